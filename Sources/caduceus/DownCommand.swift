import ArgumentParser
import Lab

/// `caduceus down`: stops what `caduceus up` started.
struct DownCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down", abstract: "Stop and remove the deployment's containers (data kept unless --volumes).")

    @OptionGroup var stackOptions: StackOptions

    @Flag(help: "Also remove the data volumes (the FHIR database, PostgreSQL's data).")
    var volumes = false

    @Flag(help: "Also remove the images `up` built.")
    var images = false

    func run() async throws {
        try stackOptions.stack().down(volumes: volumes, images: images)
        writeStandardError(
            "caduceus down: stopped" + (volumes ? ", data removed" : "") + (images ? ", images removed" : ""))
    }
}
