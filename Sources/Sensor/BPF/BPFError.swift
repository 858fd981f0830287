#if canImport(Glibc)
    import Glibc
#endif

/// A libbpf or system call failed; `errno` is kept with what was being done.
public struct BPFError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let errno: Int32

    public var description: String {
        "\(operation): \(String(cString: strerror(errno))) (errno \(errno))\(hint)"
    }

    private var hint: String {
        switch errno {
        case EPERM: return ". The sensor needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN)."
        case EACCES: return ". The kernel's verifier refused a program: CADUCEUS_BPF_DEBUG=1 prints its log."
        default: return ""
        }
    }
}

/// Runs a libbpf call that returns a negative errno (or -1 with `errno` set) on failure.
@discardableResult
func bpfCall(_ operation: @autoclosure () -> String, _ body: () -> Int32) throws -> Int32 {
    let result = body()
    if result < 0 {
        let code = result == -1 && errno != 0 ? errno : -result
        throw BPFError(operation: operation(), errno: code)
    }
    return result
}

/// Runs a libbpf call that returns NULL (and sets `errno`) on failure.
func bpfCall<T>(_ operation: @autoclosure () -> String, _ body: () -> T?) throws -> T {
    errno = 0
    guard let result = body() else {
        throw BPFError(operation: operation(), errno: errno == 0 ? EINVAL : errno)
    }
    return result
}
