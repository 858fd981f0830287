import Foundation

/// Asks the Docker Engine API over its unix socket for a container's name and image.
/// Used once per container (answers are cached by the caller); any failure means
/// "no engine answer", never an error in the trace.
struct DockerEngineClient {
    var socketPath = "/var/run/docker.sock"

    func inspect(_ reference: String) -> ContainerInfo? {
        guard reference.allSatisfy({ $0.isLetter || $0.isNumber || "_.-".contains($0) }),
              let body = get("/containers/\(reference)/json"),
              let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
              let id = object["Id"] as? String
        else { return nil }
        let name = (object["Name"] as? String).map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 } ?? ""
        let config = object["Config"] as? [String: Any]
        return ContainerInfo(
            id: id, name: name, image: config?["Image"] as? String ?? "", imageDigest: object["Image"] as? String ?? "")
    }

    /// One HTTP/1.0 GET (so the answer is not chunked); the body when the status is 200.
    func get(_ path: String) -> Data? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)  // a busy engine (many containers starting) answers late
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard socketPath.utf8.count < capacity else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in socketPath.utf8.enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else { return nil }
        let request = Array("GET /v1.41\(path) HTTP/1.0\r\nHost: docker\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == request.count else { return nil }
        var response = Data()
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            response.append(contentsOf: chunk[0..<count])
            if response.count > 4 << 20 { return nil }
        }
        guard let headerEnd = response.range(of: Data("\r\n\r\n".utf8)),
              let statusLine = String(data: response[..<headerEnd.lowerBound], encoding: .utf8)?.split(separator: "\r\n").first,
              statusLine.split(separator: " ").dropFirst().first == "200"
        else { return nil }
        return response[headerEnd.upperBound...]
    }
}
