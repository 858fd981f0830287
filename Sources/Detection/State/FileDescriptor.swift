/// What one open descriptor refers to, as far as the event stream has shown it.
public struct FileDescriptor: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case file, directory, ipv4, ipv6, unix, pipe, memfd, packet, netlink, other

        /// Falco's one-letter form.
        public var typeChar: String {
            switch self {
            case .file, .directory: return "f"
            case .ipv4: return "4"
            case .ipv6: return "6"
            case .unix: return "u"
            case .pipe: return "p"
            case .memfd: return "m"
            case .packet: return "r"
            case .netlink: return "n"
            case .other: return "o"
            }
        }
    }

    public var kind: Kind
    /// A file's path (absolute when the event gave one), or a unix socket's path.
    public var path: String
    /// tcp, udp or raw for sockets.
    public var l4proto: String?
    public var localIP: String?
    public var localPort: Int?
    public var remoteIP: String?
    public var remotePort: Int?
    /// Accepted or listening: the local end is the server.
    public var isServer = false

    public init(kind: Kind, path: String = "", l4proto: String? = nil) {
        self.kind = kind
        self.path = path
        self.l4proto = l4proto
    }

    public var isSocket: Bool { [.ipv4, .ipv6, .unix, .packet, .netlink].contains(kind) }

    /// Falco's `fd.name`: the path, or `cip:cport->sip:sport` for IP sockets.
    public var name: String {
        guard kind == .ipv4 || kind == .ipv6 else { return path }
        let local = "\(localIP ?? (kind == .ipv6 ? "::" : "0.0.0.0")):\(localPort ?? 0)"
        guard let remoteIP else { return local }
        let remote = "\(remoteIP):\(remotePort ?? 0)"
        return isServer ? "\(remote)->\(local)" : "\(local)->\(remote)"
    }

    var serverIP: String? { isServer ? localIP : remoteIP }
    var serverPort: Int? { isServer ? localPort : remotePort }
    var clientIP: String? { isServer ? remoteIP : localIP }
    var clientPort: Int? { isServer ? remotePort : localPort }
}
