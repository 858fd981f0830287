import Foundation

/// A TCP listener on 127.0.0.1 that accepts every connection and hangs up at once (the far
/// end of a connect test, or of a reverse shell, which then reads end-of-file and exits).
public final class LoopbackListener: @unchecked Sendable {
    public let port: UInt16
    private let socketFD: Int32
    private let acceptedOne = DispatchSemaphore(value: 0)

    public init() throws {
        let listening = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = LoopbackPort.address(0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw -> Int32 in
                guard bind(listening, raw, length) == 0, listen(listening, 16) == 0 else { return -1 }
                return getsockname(listening, raw, &length)
            }
        }
        guard bound == 0 else { throw LabError("cannot listen on 127.0.0.1") }
        socketFD = listening
        port = UInt16(bigEndian: address.sin_port)
        let signal = acceptedOne
        Thread.detachNewThread {
            while true {
                let client = accept(listening, nil, nil)
                if client < 0 { return }
                close(client)
                signal.signal()
            }
        }
    }

    /// Whether a client connected (waits up to 10 s: on two busy cores the accepting thread was
    /// not scheduled within one second, in a full test run).
    public var accepted: Bool { acceptedOne.wait(timeout: .now() + 10) == .success }

    deinit {
        shutdown(socketFD, Int32(SHUT_RDWR))
        close(socketFD)
    }
}
