import Foundation

/// A field's type as Falco declares it (libsinsp's `ppm_param_type` of the field), which
/// decides the operators a condition may apply to it and the values it may compare with.
/// Checked when rules load, so `proc.pid contains 1` or `fd.net = abc` is refused at its
/// file:line:column, as Falco refuses it, instead of silently never matching.
public enum FieldType: String, Sendable, CaseIterable {
    case charbuf = "CHARBUF", fspath = "FSPATH", bytebuf = "BYTEBUF"
    case int64 = "INT64", uint64 = "UINT64", uint32 = "UINT32", port = "PORT"
    case abstime = "ABSTIME", reltime = "RELTIME"
    case bool = "BOOL", ipaddr = "IPADDR", ipnet = "IPNET"
    /// A list of strings (Falco's EPF_IS_LIST fields, `fd.types`): membership only.
    case charbufList = "CHARBUF list"

    var isNumeric: Bool { [.int64, .uint64, .uint32, .port, .abstime, .reltime].contains(self) }

    /// Falco's operator families: numbers order and compare; booleans and addresses only
    /// compare for (in)equality and membership; strings take every text operator; byte
    /// buffers take the byte operators.
    public func allows(_ op: ConditionOperator) -> Bool {
        switch self {
        case .charbuf, .fspath:
            return ![.bcontains, .bstartswith].contains(op)
        case .bytebuf:
            return [.equal, .notEqual, .contains, .in, .startswith, .endswith, .intersects, .bcontains, .bstartswith]
                .contains(op)
        case .bool, .ipaddr, .ipnet:
            return [.equal, .notEqual, .in, .intersects].contains(op)
        case .charbufList:
            return [.in, .intersects].contains(op)
        case .int64, .uint64, .uint32, .port, .abstime, .reltime:
            return [.equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual, .in, .intersects].contains(op)
        }
    }

    /// Why `value` cannot be compared with a field of this type (Falco fails to parse it
    /// when the rule loads), or nil.
    public func problem(with value: String, _ op: ConditionOperator) -> String? {
        switch self {
        case .charbuf, .fspath, .charbufList:
            return nil
        case .bytebuf:
            guard op == .bcontains || op == .bstartswith else { return nil }
            let hex = value.utf8
            let valid = hex.count % 2 == 0 && !hex.isEmpty && hex.allSatisfy { isxdigit(Int32($0)) != 0 }
            return valid ? nil : "'\(value.prefix(80))' is not an even number of hex digits"
        case .int64, .abstime, .reltime:
            return Int64(value) == nil ? "'\(value.prefix(80))' is not a number" : nil
        case .uint64:
            return UInt64(value) == nil ? "'\(value.prefix(80))' is not an unsigned number" : nil
        case .uint32:
            return UInt32(value) == nil ? "'\(value.prefix(80))' is not an unsigned 32-bit number" : nil
        case .port:
            return UInt16(value) == nil ? "'\(value.prefix(80))' is not a port number (0-65535)" : nil
        case .bool:
            return value == "true" || value == "false" ? nil : "'\(value.prefix(80))' is not true or false"
        case .ipaddr:
            return IPNetwork(address: value) == nil ? "'\(value.prefix(80))' is not an IP address" : nil
        case .ipnet:
            return IPNetwork(value) == nil ? "'\(value.prefix(80))' is not an IP network (address/prefix)" : nil
        }
    }
}

/// An IPv4 or IPv6 network (an address is a network of full length), compared on bytes.
struct IPNetwork: Sendable, Equatable {
    let bytes: [UInt8]
    let prefix: Int

    /// `a.b.c.d/n`, `x::y/n`, or a bare address.
    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPNetwork(address: String(parts[0])) else { return nil }
        var prefix = address.prefix
        if parts.count == 2 {
            guard let given = Int(parts[1]), given >= 0, given <= address.prefix else { return nil }
            prefix = given
        }
        bytes = address.bytes
        self.prefix = prefix
    }

    /// One address, parsed by inet_pton (4 or 16 bytes).
    init?(address text: String) {
        guard !text.isEmpty, text.utf8.count < 64 else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
            prefix = 32
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
            prefix = 128
            return
        }
        return nil
    }

    private init(bytes: [UInt8], prefix: Int) {
        self.bytes = bytes
        self.prefix = prefix
    }

    /// Whether `address` (same family) lies in this network.
    func contains(_ address: IPNetwork) -> Bool {
        guard address.bytes.count == bytes.count else { return false }
        var remaining = prefix
        for index in bytes.indices where remaining > 0 {
            let bits = min(remaining, 8)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if bytes[index] & mask != address.bytes[index] & mask { return false }
            remaining -= bits
        }
        return true
    }
}
