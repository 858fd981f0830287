import SensorBPF

/// One record from the ring buffer, read in place: no copies, no allocations.
/// Valid only inside the callback that received it.
public struct RawEvent {
    public let bytes: UnsafeRawBufferPointer

    /// Wraps a record; nil when it is shorter than its header says, or its header's size is
    /// less than the header itself (never trusted blindly: a recording's records are input).
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= MemoryLayout<sensor_event_header>.size else { return nil }
        self.bytes = bytes
        guard Int(header.size) <= bytes.count, Int(header.size) >= MemoryLayout<sensor_event_header>.size else {
            return nil
        }
    }

    @inline(__always)
    public var header: sensor_event_header {
        bytes.loadUnaligned(as: sensor_event_header.self)
    }

    /// The arguments in record order: index, kind and the payload bytes.
    public var arguments: ArgumentSequence {
        let end = min(Int(header.size), bytes.count)
        return ArgumentSequence(
            bytes: UnsafeRawBufferPointer(rebasing: bytes[MemoryLayout<sensor_event_header>.size..<end]))
    }
}

/// One argument as it travels: see `struct sensor_arg_header`.
public struct RawArgument {
    public let index: Int
    public let kind: ArgumentKind
    public let payload: UnsafeRawBufferPointer

    /// Integer kinds: the 8-byte value as the kernel stored it (already sign-extended for s32).
    @inline(__always)
    public var integer: UInt64 {
        payload.count >= 8 ? payload.loadUnaligned(as: UInt64.self) : 0
    }

    /// String kinds: the bytes without the terminating NUL.
    public var stringBytes: UnsafeRawBufferPointer {
        var end = payload.count
        if let nul = payload.firstIndex(of: 0) { end = nul }
        return UnsafeRawBufferPointer(rebasing: payload[0..<end])
    }
}

public struct ArgumentSequence: Sequence, IteratorProtocol {
    var bytes: UnsafeRawBufferPointer
    var offset = 0

    public mutating func next() -> RawArgument? {
        let headerSize = MemoryLayout<sensor_arg_header>.size
        guard offset + headerSize <= bytes.count else { return nil }
        let header = bytes.loadUnaligned(fromByteOffset: offset, as: sensor_arg_header.self)
        let start = offset + headerSize
        let end = start + Int(header.length)
        guard end <= bytes.count, let kind = ArgumentKind(rawValue: header.kind) else { return nil }
        offset = end
        return RawArgument(
            index: Int(header.index), kind: kind, payload: UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
    }
}

extension sensor_event_header {
    /// A fixed-size C char array as bytes up to its NUL.
    @inline(__always)
    static func withCString<R>(
        _ tuple: (
            CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar,
            CChar
        ), _ body: (UnsafeRawBufferPointer) -> R
    ) -> R {
        withUnsafeBytes(of: tuple) { raw in
            let end = raw.firstIndex(of: 0) ?? raw.count
            return body(UnsafeRawBufferPointer(rebasing: raw[0..<end]))
        }
    }
}
