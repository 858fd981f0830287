import Foundation
@testable import Sensor
import Testing

/// What Docker's inspect answer adds to a container (privilege, start, mounts, pod labels):
/// read with bounds, since whoever creates a container shapes the answer.
@Suite struct ContainerMetadataTests {
    func details(_ json: String) throws -> ContainerInfo {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        var info = ContainerInfo(id: "abc")
        DockerEngineClient.addDetails(object, to: &info)
        return info
    }

    @Test func readsPrivilegeStartMountsAndPodLabels() throws {
        let info = try details(
            """
            {"HostConfig": {"Privileged": true}, "State": {"StartedAt": "2024-05-01T10:00:00.123456789Z"},
             "Mounts": [{"Source": "/var/run/docker.sock", "Destination": "/run/docker.sock", "Mode": "", "RW": true, "Propagation": "rprivate"}],
             "Config": {"Labels": {"io.kubernetes.pod.name": "web-0", "io.kubernetes.pod.namespace": "prod"}}}
            """)
        #expect(info.privileged == true)
        #expect(info.startTime == 1_714_557_600_123_456_789)
        #expect(
            info.mounts == [
                ContainerInfo.Mount(
                    source: "/var/run/docker.sock", destination: "/run/docker.sock", mode: "", readWrite: true,
                    propagation: "rprivate")
            ])
        #expect(info.podName == "web-0" && info.podNamespace == "prod")
        #expect(DockerEngineClient.parseTime("2024-05-01T10:00:00Z") == 1_714_557_600_000_000_000)
        #expect(DockerEngineClient.parseTime("0001-01-01T00:00:00Z") == nil, "Docker's zero time is no time")
    }

    @Test func hostileAnswersAreBounded() throws {
        let long = String(repeating: "a", count: 100_000)
        let mounts = (0..<1000).map { "{\"Source\": \"/s\($0)\", \"Destination\": \"/\(long)\"}" }.joined(
            separator: ",")
        let info = try details(
            """
            {"HostConfig": {"Privileged": "yes"}, "State": {"StartedAt": "2024-05-01T10:00:00.12x456789Z"},
             "Mounts": [\(mounts), 7, {"Source": 1}], "Config": {"Labels": {"io.kubernetes.pod.name": ["x"]}}}
            """)
        #expect(info.privileged == nil, "a string is not a Bool")
        #expect(info.startTime == nil)
        #expect(info.mounts.count == DockerEngineClient.mountLimit)
        #expect(info.mounts.allSatisfy { $0.destination.utf8.count <= DockerEngineClient.textLimit })
        #expect(info.podName == nil)
        #expect(try details("{\"Mounts\": \"none\", \"State\": 3}").mounts.isEmpty)
    }
}
