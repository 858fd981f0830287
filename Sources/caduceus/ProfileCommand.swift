import ArgumentParser
import Detection
import Foundation
import Sensor

/// `caduceus profile`: learned container profiles.
struct ProfileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Learn what a container normally does, for `detect --profile` and a seccomp profile.",
        subcommands: [ProfileRecordCommand.self]
    )
}

/// `caduceus profile record`: watches one container and writes its profile as YAML.
struct ProfileRecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Record a container's executables, files, network endpoints, syscalls and capabilities as a YAML profile.",
        discussion: """
            Needs root. Runs until Ctrl-C or --duration, then writes the profile:
              caduceus profile record --container fhir --duration 60 --output fhir-profile.yaml --seccomp fhir-seccomp.json
              caduceus detect --profile fhir-profile.yaml     # alerts PROFILE-* on anything outside it
              docker run --security-opt seccomp=fhir-seccomp.json ...
            """
    )

    @OptionGroup var watch: WatchOptions

    @Option(help: "Write the YAML profile here.")
    var output: String

    @Option(help: "Also write a Docker/OCI seccomp profile allowing only the syscalls seen (plus a start-up baseline).")
    var seccomp: String?

    func validate() throws {
        if watch.container == nil { throw ValidationError("--container NAME is required: a profile is of one container") }
    }

    func run() throws {
        let learner = ProfileLearner(containerName: watch.container)
        let selection = EventSelection(ids: Set(ProfileLearner.requiredEvents.compactMap { EventTable.definition(named: $0)?.id }))
        var configuration = try watch.sensorConfiguration(events: selection)
        if watch.wakeupKib == nil {
            configuration.wakeupBytes = 256 << 10
            configuration.pollMilliseconds = 20
        }
        let sensor = try Sensor(configuration: configuration)
        writeStandardError("caduceus profile: recording \(watch.container ?? ""); Ctrl-C to stop")
        let offset = sensor.bootTimeOffset
        let containers = sensor.containers
        let start = Date()
        let statistics = try watch.runUntilStopped(stop: { sensor.stop() }) {
            try sensor.run { raw in learner.observe(TraceEvent(raw, bootTimeOffset: offset, containers: containers)) }
        }
        let profile = learner.profile(duration: Date().timeIntervalSince(start))
        if profile.image.isEmpty { writeStandardError("caduceus profile: no event from the container: its image is unknown") }
        try profile.yaml().write(toFile: output, atomically: true, encoding: .utf8)
        if let seccomp { try profile.seccompJSON().write(to: URL(fileURLWithPath: seccomp)) }
        writeStandardError(
            "caduceus profile: \(profile.events) events: \(profile.executables.count) executables, \(profile.syscalls.count) syscalls, "
                + "\(profile.capabilities.count) capabilities; wrote \(output)" + (seccomp.map { " and \($0)" } ?? ""))
        if statistics.lost > 0 {
            writeStandardError("caduceus profile: \(statistics.lost) events lost in the kernel: the profile may be incomplete")
            throw ExitCode(3)
        }
    }
}
