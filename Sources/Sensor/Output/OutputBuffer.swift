#if canImport(Glibc)
    import Glibc
#endif

/// A fixed-capacity byte buffer for the event writers. Appends are unchecked: a writer
/// makes sure `remaining` covers its largest event before writing one (see
/// `JSONEventWriter.maximumEventBytes`), so the hot path has no bounds tests.
///
/// `@unchecked Sendable`: a buffer has one owner at a time, handed over whole (the reader fills
/// it, ``AsyncFileWriter/submit(_:)`` writes it on its queue and returns it to the pool under
/// its lock), never shared while written to.
public final class OutputBuffer: @unchecked Sendable {
    public let capacity: Int
    public let storage: UnsafeMutablePointer<UInt8>
    public var count = 0

    public init(capacity: Int) {
        self.capacity = capacity
        storage = .allocate(capacity: capacity)
    }

    deinit { storage.deallocate() }

    public var remaining: Int { capacity - count }
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: storage, count: count) }

    @inline(__always)
    public func append(_ byte: UInt8) {
        storage[count] = byte
        count += 1
    }

    @inline(__always)
    public func append(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        (storage + count).update(from: base.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        count += bytes.count
    }

    @inline(__always)
    public func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// A literal: no retain, no lazy global, just the bytes.
    @inline(__always)
    public func append(_ literal: StaticString) {
        append(UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    /// Decimal digits of an unsigned integer.
    @inline(__always)
    public func append(decimal value: UInt64) {
        if value < 10 {
            append(UInt8(truncatingIfNeeded: value) &+ 48)
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch, enough for 20 digits
        withUnsafeMutableBytes(of: &digits) { scratch in
            var rest = value
            var position = scratch.count
            while rest > 0 {
                position -= 1
                scratch[position] = UInt8(truncatingIfNeeded: rest % 10) &+ 48
                rest /= 10
            }
            append(UnsafeRawBufferPointer(rebasing: scratch[position...]))
        }
    }

    @inline(__always)
    public func append(decimal value: Int64) {
        if value < 0 {
            append(UInt8(ascii: "-"))
            append(decimal: UInt64(bitPattern: 0 &- value))
        } else {
            append(decimal: UInt64(value))
        }
    }

    /// A JSON string literal: quotes, escapes as JSONEncoder writes them, and invalid
    /// UTF-8 replaced by U+FFFD exactly as Swift's `String(decoding:as:)` does.
    public func append(jsonString bytes: UnsafeRawBufferPointer) {
        append(UInt8(ascii: "\""))
        var ascii = true
        for byte in bytes where byte >= 0x80 {
            ascii = false
            break
        }
        if ascii {
            appendEscaped(bytes)
        } else {
            var text = String(decoding: bytes, as: UTF8.self)
            text.withUTF8 { appendEscaped(UnsafeRawBufferPointer($0)) }
        }
        append(UInt8(ascii: "\""))
    }

    public func append(jsonString text: String) {
        var text = text
        text.withUTF8 { utf8 in
            append(UInt8(ascii: "\""))
            appendEscaped(UnsafeRawBufferPointer(utf8))
            append(UInt8(ascii: "\""))
        }
    }

    @inline(__always)
    private func appendEscaped(_ bytes: UnsafeRawBufferPointer) {
        var runStart = 0
        for index in 0..<bytes.count {
            let byte = bytes[index]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            append(UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
            runStart = index + 1
            append(UInt8(ascii: "\\"))
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): append(byte)
            case 0x08: append(UInt8(ascii: "b"))
            case 0x0C: append(UInt8(ascii: "f"))
            case 0x0A: append(UInt8(ascii: "n"))
            case 0x0D: append(UInt8(ascii: "r"))
            case 0x09: append(UInt8(ascii: "t"))
            default:
                let hex: StaticString = "0123456789abcdef"
                append("u00" as StaticString)
                append(hex.utf8Start[Int(byte >> 4)])
                append(hex.utf8Start[Int(byte & 0xF)])
            }
        }
        append(UnsafeRawBufferPointer(rebasing: bytes[runStart..<bytes.count]))
    }
}
