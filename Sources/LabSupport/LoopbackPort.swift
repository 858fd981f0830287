import Foundation

/// A port for a server the lab starts on 127.0.0.1.
public enum LoopbackPort {
    /// A port of 30000-32767 that nothing is bound to on 127.0.0.1 now, below Linux's
    /// ephemeral range (32768-60999 by default). A port drawn from 30000-39999, as the
    /// benchmarks did, could be the local end of one of the machine's own connections; the
    /// server would then fail to bind and exit. (One full test run's benchmark server died at
    /// start; the tail of its log that was kept did not say why.) Another process can still
    /// take the port before the server binds it.
    public static func unused() -> Int {
        for _ in 0..<50 {
            let port = Int.random(in: 30000..<32768)
            if isFree(port) { return port }
        }
        return Int.random(in: 30000..<32768)
    }

    /// Whether a socket can bind 127.0.0.1:`port` (with SO_REUSEADDR, as the server binds).
    static func isFree(_ port: Int) -> Bool {
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard probe >= 0 else { return false }
        defer { close(probe) }
        var one: Int32 = 1
        setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = address(port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(probe, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// 127.0.0.1:`port` as `bind` takes it.
    static func address(_ port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}
