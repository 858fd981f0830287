import ArgumentParser
import Lab

/// `caduceus images`: the deployment's images, built without a registry.
struct ImagesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "images",
        abstract: "Build caduceus-fhir:latest from a caduceus binary (and caduceus-postgres:latest), unless current.")

    @Option(help: "The caduceus binary to put in the image (default: this one).")
    var binary: String?

    @Flag(help: "Also build caduceus-postgres:latest from the host's PostgreSQL 15.")
    var postgres = false

    func run() async throws {
        let builder = ImageBuilder { writeStandardError("caduceus images: " + $0) }
        try builder.buildServerImage(binary: binary ?? ImageBuilder.currentExecutable)
        print(ImageBuilder.serverImage)
        if postgres {
            try builder.buildPostgresImage()
            print(ImageBuilder.postgresImage)
        }
    }
}
