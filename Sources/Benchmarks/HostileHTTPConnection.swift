import Foundation
import HostileRequests

/// One HTTP/1.1 keep-alive connection on a plain socket, for hostile requests: the request line
/// goes out byte for byte as generated (a client library would normalize `..`, `%zz` or odd
/// methods away), and every wait is bounded, so that a server that never answers is seen as a
/// hang rather than waited for.
final class HostileHTTPConnection {
    enum Outcome {
        case answered(status: Int, body: [UInt8])
        /// Nothing within the time limit.
        case timedOut
        /// Refused, reset or closed before a whole answer.
        case lost(String)
    }

    let host: String
    let port: Int
    let timeout: Double
    private var socket: Int32 = -1
    private var buffered: [UInt8] = []

    init(host: String, port: Int, timeout: Double) {
        self.host = host
        self.port = port
        self.timeout = timeout
    }

    deinit { close() }

    func close() {
        if socket >= 0 { Foundation.close(socket) }
        socket = -1
        buffered = []
    }

    /// Sends `request` (opening the connection first if needed) and reads its answer.
    func send(_ request: HostileRequest) -> Outcome {
        if socket < 0, let failure = connect() { return .lost(failure) }
        var head = "\(request.method) \(request.target) HTTP/1.1\r\nHost: \(host):\(port)\r\n"
        for header in request.headers where header.name.lowercased() != "content-length" {
            head += "\(header.name): \(header.value)\r\n"
        }
        if let body = request.body { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        let deadline = Date().addingTimeInterval(timeout)
        guard write(Array(head.utf8) + (request.body ?? [])) else {
            close()
            return .lost("write failed: \(String(cString: strerror(errno)))")
        }
        let outcome = readAnswer(head: request.method == "HEAD", until: deadline)
        if case .answered = outcome {} else { close() }
        return outcome
    }

    private func connect() -> String? {
        let descriptor = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return "socket: \(String(cString: strerror(errno)))" }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            Foundation.close(descriptor)
            return "not an IPv4 address: \(host)"
        }
        // Each read and write waits at most a second, so the whole answer's deadline is kept.
        var wait = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Foundation.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            Foundation.close(descriptor)
            return "connect: \(reason)"
        }
        socket = descriptor
        return nil
    }

    private func write(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        let deadline = Date().addingTimeInterval(timeout)
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes {
                Foundation.send(socket, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent > 0 {
                offset += sent
            } else if sent < 0, errno == EAGAIN || errno == EINTR, Date() < deadline {
                continue
            } else {
                return false
            }
        }
        return true
    }

    /// More bytes into `buffered`, or why none came: end of stream, an error or the deadline.
    private func fill(until deadline: Date) -> Result<Void, Failure> {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                buffered += chunk[0..<count]
                return .success(())
            }
            if count == 0 { return .failure(.closed) }
            guard errno == EAGAIN || errno == EINTR else { return .failure(.error(String(cString: strerror(errno)))) }
            if Date() >= deadline { return .failure(.timedOut) }
        }
    }

    enum Failure: Error {
        case closed, timedOut
        case error(String)
    }

    private func readAnswer(head: Bool, until deadline: Date) -> Outcome {
        func failed(_ failure: Failure) -> Outcome {
            switch failure {
            case .timedOut: .timedOut
            case .closed: .lost("closed by the server before a whole answer")
            case .error(let reason): .lost(reason)
            }
        }
        var lines: [String] = []
        var status = 0
        // Interim answers (`100 Continue` to an `Expect`) come before the answer, without a body.
        repeat {
            var end: Int?
            while true {
                end = headEnd()
                if end != nil { break }
                if case .failure(let failure) = fill(until: deadline) { return failed(failure) }
            }
            let headText = String(decoding: buffered[0..<end!], as: UTF8.self)
            buffered.removeFirst(end! + 4)
            lines = headText.components(separatedBy: "\r\n")
            let statusParts = lines[0].split(separator: " ")
            guard statusParts.count >= 2, let code = Int(statusParts[1]) else {
                return .lost("not an HTTP status line: \(lines[0].prefix(100))")
            }
            status = code
        } while (100..<200).contains(status) && status != 101
        var length: Int?
        var chunked = false
        var closes = false
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces).lowercased()
            if name == "content-length" { length = Int(value) }
            if name == "transfer-encoding", value.contains("chunked") { chunked = true }
            if name == "connection", value == "close" { closes = true }
        }
        var body: [UInt8] = []
        if head || status == 204 || status == 304 || (100..<200).contains(status) {
            // No body.
        } else if chunked {
            while true {
                guard let lineEnd = lineEnd() else {
                    if case .failure(let failure) = fill(until: deadline) { return failed(failure) }
                    continue
                }
                let sizeText = String(decoding: buffered[0..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
                guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                    return .lost("a broken chunk size")
                }
                while buffered.count < lineEnd + 2 + size + 2 {
                    if case .failure(let failure) = fill(until: deadline) { return failed(failure) }
                }
                body += buffered[(lineEnd + 2)..<(lineEnd + 2 + size)]
                buffered.removeFirst(lineEnd + 2 + size + 2)
                if size == 0 { break }  // trailers are not sent by this server
            }
        } else if let length {
            while buffered.count < length {
                if case .failure(let failure) = fill(until: deadline) { return failed(failure) }
            }
            body = Array(buffered[0..<length])
            buffered.removeFirst(length)
        } else {
            // Until the server closes.
            while case .success = fill(until: deadline) {}
            body = buffered
            buffered = []
            closes = true
        }
        if closes { close() }
        return .answered(status: status, body: body)
    }

    private func headEnd() -> Int? {
        guard buffered.count >= 4 else { return nil }
        for index in 0...(buffered.count - 4)
        where buffered[index] == 13 && buffered[index + 1] == 10 && buffered[index + 2] == 13
            && buffered[index + 3] == 10
        {
            return index
        }
        return nil
    }

    private func lineEnd() -> Int? {
        guard buffered.count >= 2 else { return nil }
        for index in 0...(buffered.count - 2) where buffered[index] == 13 && buffered[index + 1] == 10 { return index }
        return nil
    }
}
