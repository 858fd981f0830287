import Foundation

/// The ids the server gives new resources: UUIDs of version 7 (RFC 9562), a 48-bit
/// millisecond timestamp followed by 74 random bits.
///
/// Ids that grow with time land at the end of every `(type, id)` B-tree instead of on a
/// random page of each: a commit then writes a few shared pages rather than one page per
/// index per resource (SQLite's WAL writes whole pages, and that was most of a create's
/// cost, BENCHMARKS.md "FHIR store"). The random part still leaves an id unguessable; the
/// time it shows is the resource's `meta.lastUpdated` anyway.
public enum ResourceIds {
    /// A new id, lower-case hex in the 8-4-4-4-12 form.
    public static func make(milliseconds: UInt64 = UInt64(Date().timeIntervalSince1970 * 1000)) -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<6 { bytes[index] = UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - index))) }
        let random = (generator.next() as UInt64, generator.next() as UInt64)
        for index in 6..<16 {
            bytes[index] = UInt8(truncatingIfNeeded: (index < 14 ? random.0 : random.1) >> (8 * (index % 8)))
        }
        bytes[6] = 0x70 | (bytes[6] & 0x0F)  // version 7
        bytes[8] = 0x80 | (bytes[8] & 0x3F)  // RFC 9562 variant
        let hex = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if [4, 6, 8, 10].contains(index) { text.append(UInt8(ascii: "-")) }
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
