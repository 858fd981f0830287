import FHIRTestSupport
import Foundation

enum TestDatabasesPath {
    static var examples: URL { TestDatabases.sharedFHIRDirectory.appendingPathComponent("r4-examples") }
}
