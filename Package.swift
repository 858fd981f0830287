// swift-tools-version:6.1
import PackageDescription

// Test targets stay in the Swift 5 language mode: their fixtures (rule-test files, event
// fixtures, closures in parameterized @Test arguments) are not Sendable yet, which Swift 6's
// checking of @Test arguments and static fixtures requires. Every other target is Swift 6.
let testLanguageMode: [SwiftSetting] = [.swiftLanguageMode(.v5)]

let package = Package(
    name: "Caduceus",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "caduceus", targets: ["caduceus"])
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.24.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.2.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // JSON that keeps member order and number text: the hand-written parser and writer.
        .target(name: "JSON"),
        // Resource model, resource types and search parameters generated from the R4 spec.
        .target(name: "FHIR", dependencies: ["JSON"]),
        // Storage protocol with one SQL implementation over SQLite and PostgreSQL.
        .target(
            name: "FHIRStore",
            dependencies: [
                "FHIR",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The REST API: Hummingbird routes, content negotiation, Bundles, OperationOutcome.
        .target(
            name: "FHIRServer",
            dependencies: [
                "FHIR", "FHIRStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "JWTKit", package: "jwt-kit"),
                // The connection budgets' channel handlers (header, body and idle timeouts,
                // per-address counts, an OperationOutcome for the decoder's refusals).
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ]
        ),
        // Hostile FHIR requests from a seed, shared by the fuzz test and `caduceus bench hostile`.
        .target(name: "HostileRequests", dependencies: ["JSON"]),
        // Running other programs (ProcessRunner), a process's memory, lock-guarded counters, a
        // loopback listener: what the lab, the benchmarks and the kernel tests share, Foundation only.
        .target(name: "LabSupport"),
        // `caduceus report`: the HTML and JSON report of what the lab's runs wrote (trace files,
        // alerts, the detection matrix, benchmark figures). It reads files only: Sensor for the
        // trace line reader, Detection for the alert priorities, no HTTP, no store, not Lab.
        .target(
            name: "LabReport",
            dependencies: ["JSON", "Sensor", "Detection"]
        ),
        // Deployment (images, the compose stack), the clinical workload, the attack lab and live
        // detection. No benchmark and no report: those build on it (Benchmarks) or read what it
        // writes (LabReport).
        .target(
            name: "Lab",
            dependencies: [
                "FHIR", "FHIRServer", "Sensor", "Detection", "JSON", "LabReport", "LabSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // The benchmarks behind `caduceus bench` (store, Synthea, paging, auth, detection,
        // overhead, prevention, kill, hostile, soak): they drive the FHIR router in-process
        // (InProcessFHIRClient, no testing library), the lab's stack and the sensor.
        .target(
            name: "Benchmarks",
            dependencies: [
                "FHIR", "FHIRStore", "FHIRServer", "Sensor", "Detection", "HostileRequests", "JSON", "Lab",
                "LabSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "caduceus",
            dependencies: [
                "FHIR", "FHIRStore", "FHIRServer", "Benchmarks", "Lab", "LabReport", "LabSupport", "Sensor",
                "Detection", "DetectionOutputs",
                "HostileRequests", "JSON",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // libbpf from Debian's libbpf-dev.
        .systemLibrary(name: "CLibbpf", pkgConfig: "libbpf", providers: [.apt(["libbpf-dev"])]),
        // The BPF programs (*.bpf.c, built by BPFCompilerPlugin) and the event structs shared with Swift.
        .target(
            name: "SensorBPF",
            exclude: [
                "sensor.bpf.c", "probe.bpf.c", "kernel_types.h", "task_context.bpf.h", "security_events.bpf.h",
                "enforcement.bpf.h",
            ]
        ),
        .plugin(name: "BPFCompilerPlugin", capability: .buildTool()),
        // Loading, ring buffer, decoding, container enrichment, event output.
        .target(
            name: "Sensor",
            dependencies: ["CLibbpf", "SensorBPF", "JSON"],
            // The per-event path mutates class state millions of times a second; dynamic
            // exclusivity checks were a quarter of its time. Only the reading thread touches it.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])],
            plugins: ["BPFCompilerPlugin"]
        ),
        // Rule language, process/fd state, built-in rules, alerts, enforcement, and the
        // DetectionPipeline that runs sensor -> engine -> enforcement -> drift -> throttle -> outputs.
        // No HTTP: the outputs are DetectionOutputs', behind the AlertSink protocol.
        .target(
            name: "Detection",
            dependencies: [
                "Sensor", "JSON",
                .product(name: "Yams", package: "Yams"),
            ],
            // As in Sensor: the per-event path mutates engine state millions of times a second,
            // on one thread; dynamic exclusivity checks cost it a tenth of its time.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])],
            plugins: ["RuleBundlePlugin"]
        ),
        // Where alerts go (AlertSink implementations): JSON lines or readable lines to a file,
        // webhook POSTs, the FHIR audit feed (AuditEvent). The only detection code that does HTTP.
        .target(
            name: "DetectionOutputs",
            dependencies: [
                "Detection", "Sensor", "JSON",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Copies the shipped rules/*.yaml into Detection's resources (rules/ stays at the top of the repo).
        .plugin(name: "RuleBundlePlugin", capability: .buildTool()),
        // Fresh SQLite and PostgreSQL stores and shared test data for the test targets.
        .target(name: "FHIRTestSupport", dependencies: ["FHIR", "FHIRStore"], path: "Tests/FHIRTestSupport"),
        .testTarget(
            name: "FHIRTests", dependencies: ["JSON", "FHIR", "FHIRTestSupport"], swiftSettings: testLanguageMode),
        // Root, BPF and Docker checks shared by the tests that run against the real kernel.
        .target(name: "KernelTestSupport", dependencies: ["Sensor", "LabSupport"], path: "Tests/KernelTestSupport"),
        .testTarget(
            name: "DetectionTests",
            dependencies: [
                "JSON", "FHIR", "Detection", "DetectionOutputs", "Sensor", "Lab", "LabSupport", "KernelTestSupport",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: testLanguageMode
        ),
        .testTarget(
            name: "SensorTests",
            dependencies: ["Sensor", "SensorBPF", "CLibbpf", "KernelTestSupport", "LabSupport", "HostileRequests"],
            swiftSettings: testLanguageMode),
        .testTarget(
            name: "FHIRStoreTests",
            dependencies: [
                "FHIR", "FHIRStore", "FHIRTestSupport",
                // To hold sqlite-nio's threads in the test of a statement that waits for one.
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: testLanguageMode
        ),
        .testTarget(
            name: "FHIRServerTests",
            dependencies: [
                "JSON", "FHIR", "FHIRStore", "FHIRServer", "FHIRTestSupport", "HostileRequests",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: testLanguageMode
        ),
        .testTarget(name: "BenchmarksTests", dependencies: ["Benchmarks", "JSON"], swiftSettings: testLanguageMode),
        .testTarget(name: "LabSupportTests", dependencies: ["LabSupport"], swiftSettings: testLanguageMode),
        .testTarget(
            name: "LabTests",
            dependencies: [
                "Lab", "LabReport", "FHIR", "FHIRStore", "FHIRServer", "FHIRTestSupport", "JSON", "Sensor",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: testLanguageMode
        ),
    ],
    swiftLanguageModes: [.v6]
)
