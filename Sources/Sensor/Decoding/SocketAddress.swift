#if canImport(Glibc)
    import Glibc
#endif

/// A `struct sockaddr` as Tracee shows it: an ordered list of string fields
/// (`sa_family` first, then `sin_addr`/`sin_port`, `sun_path`, ...).
public enum SocketAddress {
    /// Decodes raw sockaddr bytes; an empty buffer (no address passed) gives no fields.
    public static func fields(_ bytes: UnsafeRawBufferPointer) -> [(String, String)] {
        guard bytes.count >= 2 else { return [] }
        let family = Int32(bytes.loadUnaligned(as: UInt16.self))
        switch family {
        case AF_INET where bytes.count >= 8:
            let port = UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            let address = "\(bytes[4]).\(bytes[5]).\(bytes[6]).\(bytes[7])"
            return [("sa_family", "AF_INET"), ("sin_addr", address), ("sin_port", String(port))]
        case AF_INET6 where bytes.count >= 24:
            let port = UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            let flow = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            _ = inet_ntop(AF_INET6, bytes.baseAddress! + 8, &text, socklen_t(text.count))
            let scope = bytes.count >= 28 ? bytes.loadUnaligned(fromByteOffset: 24, as: UInt32.self) : 0
            return [
                ("sa_family", "AF_INET6"), ("sin6_addr", String(cString: text)), ("sin6_port", String(port)),
                ("sin6_flowinfo", String(flow)), ("sin6_scopeid", String(scope)),
            ]
        case AF_UNIX:
            let path = UnsafeRawBufferPointer(rebasing: bytes[2...])
            if path.first == 0 {  // abstract socket: shown with a leading '@' as ss and netstat do
                let rest = UnsafeRawBufferPointer(rebasing: path[1...])
                let end = rest.firstIndex(of: 0) ?? rest.count
                return [("sa_family", "AF_UNIX"), ("sun_path", "@" + String(decoding: rest[0..<end], as: UTF8.self))]
            }
            let end = path.firstIndex(of: 0) ?? path.count
            return [("sa_family", "AF_UNIX"), ("sun_path", String(decoding: path[0..<end], as: UTF8.self))]
        default:
            return [("sa_family", familyName(family))]
        }
    }

    /// The common case written without building strings: an AF_INET address as
    /// `{"sa_family":"AF_INET","sin_addr":"a.b.c.d","sin_port":"p"}`. False for any other family.
    static func writeIPv4(_ bytes: UnsafeRawBufferPointer, to out: OutputBuffer) -> Bool {
        guard bytes.count >= 8, Int32(bytes.loadUnaligned(as: UInt16.self)) == AF_INET else { return false }
        out.append(#"{"sa_family":"AF_INET","sin_addr":""# as StaticString)
        for index in 4..<8 {
            if index > 4 { out.append(UInt8(ascii: ".")) }
            out.append(decimal: UInt64(bytes[index]))
        }
        out.append(#"","sin_port":""# as StaticString)
        out.append(decimal: UInt64(UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: 2, as: UInt16.self))))
        out.append(#""}"# as StaticString)
        return true
    }

    static func familyName(_ family: Int32) -> String {
        switch family {
        case AF_UNSPEC: return "AF_UNSPEC"
        case AF_UNIX: return "AF_UNIX"
        case AF_INET: return "AF_INET"
        case AF_INET6: return "AF_INET6"
        case AF_NETLINK: return "AF_NETLINK"
        case AF_PACKET: return "AF_PACKET"
        default: return String(family)
        }
    }
}
