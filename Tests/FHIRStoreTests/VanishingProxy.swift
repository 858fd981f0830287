import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP proxy on loopback to a real PostgreSQL that can vanish without closing: ``vanish()``
/// stops passing bytes on the connections it holds (they stay open and silent, as a host that
/// lost power or its network leaves them) and closes its listener, so that new connections
/// are refused. What no single PostgreSQL can show by itself: a statement whose host is gone
/// while its connection does not know it.
final class VanishingProxy: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let target: (host: String, port: Int)
    private let lock = NSLock()
    private var gone = false
    private var sockets: [Int32] = []

    init(to host: String, port targetPort: Int) throws {
        target = (host, targetPort)
        let listening = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listening, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard listening >= 0, bound == 0, listen(listening, 16) == 0 else {
            throw POSIXError(.EADDRNOTAVAIL)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listening, $0, &length) }
        }
        listener = listening
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in acceptConnections() }
    }

    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// From now on nothing passes, and no new connection is taken.
    func vanish() {
        let first = lock.withLock {
            defer { gone = true }
            return !gone
        }
        guard first else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    /// Ends every connection it holds (the pumps see their end and return); the descriptors
    /// are closed by the pumps, so that none is closed twice or after another test reused it.
    func stop() {
        vanish()
        for socket in lock.withLock({ sockets }) { shutdown(socket, Int32(SHUT_RDWR)) }
    }

    private var isGone: Bool { lock.withLock { gone } }

    private func acceptConnections() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0, !isGone else {
                if client >= 0 { close(client) }
                return
            }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: target.port)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard connected == 0 else {
                close(client)
                close(server)
                continue
            }
            lock.withLock { sockets += [client, server] }
            Thread.detachNewThread { [self] in pump(from: client, to: server, closing: true) }
            Thread.detachNewThread { [self] in pump(from: server, to: client, closing: false) }
        }
    }

    /// Copies bytes until either side closes; once gone, reads and drops them. The pump that
    /// reads from the client closes both descriptors when it ends, after ending the other pump.
    private func pump(from source: Int32, to destination: Int32, closing: Bool) {
        defer {
            if closing {
                shutdown(destination, Int32(SHUT_RDWR))
                close(source)
                close(destination)
            }
        }
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            guard count > 0 else { return }
            if isGone { continue }
            var sent = 0
            while sent < count {
                let written = buffer.withUnsafeBytes { write(destination, $0.baseAddress! + sent, count - sent) }
                guard written > 0 else { return }
                sent += written
            }
        }
    }
}
