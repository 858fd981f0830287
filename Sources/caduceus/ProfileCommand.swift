import ArgumentParser
import Detection
import Foundation
import Sensor

/// `caduceus profile`: learned container profiles.
struct ProfileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Learn what a container normally does, for `detect --profile` and a seccomp profile.",
        subcommands: [ProfileRecordCommand.self, ProfileMergeCommand.self]
    )
}

/// `caduceus profile record`: watches one container (or every container of an image) and writes
/// its profile as YAML.
struct ProfileRecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract:
            "Record a container's executables, files, network endpoints, syscalls and capabilities as a YAML profile.",
        discussion: """
            Needs root. Runs until Ctrl-C or --duration, then writes the profile:
              caduceus profile record --container fhir --duration 60 --output fhir-profile.yaml --seccomp fhir-seccomp.json
              caduceus detect --profile fhir-profile.yaml     # alerts PROFILE-* on anything outside it
              docker run --security-opt seccomp=fhir-seccomp.json ...
            With --image every container of that image is learned from (replicas, and those started
            while recording):
              caduceus profile record --image caduceus-fhir:latest --duration 300 --output fhir-profile.yaml
            With --from-start the container is started after the recording begins, so that its start-up
            is recorded too (what a seccomp profile must allow):
              caduceus profile record --container fhir --from-start --output fhir-profile.yaml &
              docker run -d --name fhir ... ; <workload>; docker stop fhir; kill -INT %1
            """
    )

    @OptionGroup var watch: WatchOptions

    @Option(help: "Write the YAML profile here.")
    var output: String

    @Option(help: "Also write a Docker/OCI seccomp profile allowing only the syscalls seen (plus a start-up baseline).")
    var seccomp: String?

    @Flag(
        help:
            "The container is not running yet: watch containers started from now on and record --container from its start (its start-up syscalls belong in a seccomp profile)."
    )
    var fromStart = false

    @Option(
        help:
            "Learn from every container of this image (name or name:tag) instead of one --container: replicas, and containers started during the recording."
    )
    var image: String?

    func validate() throws {
        switch (watch.container, image) {
        case (nil, nil):
            throw ValidationError(
                "--container NAME or --image IMAGE is required: a profile is of one container or one image")
        case (.some, .some): throw ValidationError("--container and --image: choose one")
        default: break
        }
    }

    func run() throws {
        let learner = ProfileLearner(containerName: watch.container, imageName: image)
        let pipeline = DetectionPipeline(learning: learner)
        var configuration = try watch.sensorConfiguration(events: .default)
        // A container that does not exist yet has no cgroup to filter on: every new container is
        // watched and the learner keeps the one named.
        if fromStart { configuration.scope = .newContainers }
        if watch.wakeupKib == nil {
            configuration.wakeupBytes = 256 << 10
            configuration.pollMilliseconds = 20
        }
        StopSignals.catchFromNow()  // a Ctrl-C while the sensor loads is not lost
        try pipeline.startSensor(configuration)
        writeStandardError(
            "caduceus profile: recording \(watch.container ?? "every container of \(image ?? "")")"
                + (fromStart ? " from its start (start it now)" : "") + "; Ctrl-C to stop")
        let start = Date()
        let statistics = try watch.runUntilStopped(stop: { pipeline.stop() }) { try pipeline.run() }
        let profile = learner.profile(duration: Date().timeIntervalSince(start))
        if profile.image.isEmpty {
            writeStandardError("caduceus profile: no event from the container: its image is unknown")
        }
        try profile.yaml().write(toFile: output, atomically: true, encoding: .utf8)
        if let seccomp { try profile.seccompJSON().write(to: URL(fileURLWithPath: seccomp)) }
        writeStandardError(
            "caduceus profile: \(profile.events) events: \(profile.executables.count) executables, \(profile.syscalls.count) syscalls, "
                + "\(profile.capabilities.count) capabilities; wrote \(output)" + (seccomp.map { " and \($0)" } ?? ""))
        if statistics.lost > 0 {
            writeStandardError(
                "caduceus profile: \(statistics.lost) events lost in the kernel: the profile may be incomplete")
            throw ExitCode(3)
        }
    }
}

/// `caduceus profile merge`: one profile from several recordings of the same image.
struct ProfileMergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract:
            "Merge recorded profiles of one image (different workloads or configurations) into one, and its seccomp profile.",
        discussion: """
            Every list is the union of the inputs'. Scripts/fhir-seccomp-profile.sh merges the FHIR server's
            recordings on SQLite and on PostgreSQL this way:
              caduceus profile merge sqlite.yaml postgres.yaml --output fhir.yaml --seccomp fhir.seccomp.json
            """
    )

    @Argument(help: "The profiles to merge (YAML, as profile record writes them).")
    var inputs: [String]

    @Option(help: "Write the merged YAML profile here.")
    var output: String

    @Option(help: "Also write the Docker/OCI seccomp profile of the merged profile.")
    var seccomp: String?

    func validate() throws {
        if inputs.isEmpty { throw ValidationError("name at least one profile to merge") }
    }

    func run() throws {
        let merged: ContainerProfile
        do {
            let profiles = try inputs.map { try ContainerProfile.load(path: $0) }
            merged = try profiles[0].merged(with: Array(profiles.dropFirst()))
        } catch let error as ProfileError {
            throw CommandFailure("\(error)")
        }
        try merged.yaml().write(toFile: output, atomically: true, encoding: .utf8)
        if let seccomp { try merged.seccompJSON().write(to: URL(fileURLWithPath: seccomp)) }
        writeStandardError(
            "caduceus profile: merged \(inputs.count) profiles: \(merged.executables.count) executables, \(merged.syscalls.count) syscalls "
                + "(\(merged.seccompAllowed.count) allowed by seccomp); wrote \(output)"
                + (seccomp.map { " and \($0)" } ?? ""))
    }
}

/// `--profile` and `--profile-container`, shared by `detect` and `lab attack`: a learned profile
/// whose drift alerts too.
struct ProfileOptions: ParsableArguments {
    @Option(
        help: "Also alert (PROFILE-*) on what a container does outside this learned profile (caduceus profile record).")
    var profile: String?

    @Option(
        help:
            "The container --profile applies to, by name or id prefix (default: every container of the profile's image)."
    )
    var profileContainer: String?

    /// The profile read from `--profile`, `nil` without one; a malformed file or a lone
    /// `--profile-container` is an error for the user.
    func load() throws -> ContainerProfile? {
        if profileContainer != nil && profile == nil { throw ValidationError("--profile-container needs --profile") }
        do {
            return try profile.map { try ContainerProfile.load(path: $0) }
        } catch let error as ProfileError {
            throw CommandFailure("\(error)")
        }
    }
}
