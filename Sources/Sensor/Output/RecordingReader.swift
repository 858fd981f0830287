import Foundation
import SensorBPF

/// A recording that cannot be read as written: the message says where and why.
public struct RecordingError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Reads a recording (`Recording`) frame by frame in large chunks, checking everything a file
/// can get wrong: the magic, the version, the layout it was written with, every frame's kind
/// and length, each event against its own header, each container frame's strings, an event of a
/// cgroup with no container frame before it, the `end` frame last and its count of events. A
/// truncated or corrupted file ends in a `RecordingError`, after the frames before the fault.
public final class RecordingReader {
    /// Nanoseconds to add to a record's boot-clock timestamp (from the file header).
    public private(set) var bootTimeOffset: UInt64 = 0
    /// The containers of the cgroups seen so far, as the recording holds them.
    public private(set) var containers: [UInt64: ContainerInfo?] = [:]
    /// The `end` frame's counters, once it has been read.
    public private(set) var totals: Recording.Totals?
    /// Events read so far.
    public private(set) var events: UInt64 = 0

    private let fileDescriptor: Int32
    private let ownsDescriptor: Bool
    private var buffer: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0
    private var atEndOfFile = false
    /// Bytes of the file before `buffer[start]`: where a fault is reported.
    private var fileOffset = 0

    /// Opens `path` ("-": standard input) and checks its header.
    public convenience init(path: String) throws {
        if path == "-" {
            try self.init(fileDescriptor: STDIN_FILENO, ownsDescriptor: false)
            return
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw RecordingError("cannot read \(path): \(String(cString: strerror(errno)))") }
        try self.init(fileDescriptor: fd, ownsDescriptor: true)
    }

    public init(fileDescriptor: Int32, ownsDescriptor: Bool) throws {
        self.fileDescriptor = fileDescriptor
        self.ownsDescriptor = ownsDescriptor
        buffer = .allocate(byteCount: 4 << 20, alignment: 16)
        // Thrown after every property is set: deinit still runs, and frees and closes.
        try readHeader()
    }

    deinit {
        buffer.deallocate()
        if ownsDescriptor { close(fileDescriptor) }
    }

    private func readHeader() throws {
        guard try fill(Recording.fileHeaderBytes) else {
            if end == 0 { throw RecordingError("the file is empty: not a Caduceus recording") }
            if !Array(buffer[0..<min(end, 8)]).elementsEqual(Recording.magic.prefix(min(end, 8))) {
                throw RecordingError("not a Caduceus recording (no CADUCREC magic at its start)")
            }
            throw RecordingError("the recording is truncated: \(end) bytes, shorter than its 32-byte header")
        }
        let header = UnsafeRawBufferPointer(rebasing: buffer[0..<Recording.fileHeaderBytes])
        guard Array(header[0..<8]) == Recording.magic else {
            throw RecordingError("not a Caduceus recording (no CADUCREC magic at its start)")
        }
        let version = UInt16(littleEndian: header.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
        guard version == Recording.version else {
            throw RecordingError(
                "recording format version \(version): this caduceus reads version \(Recording.version)")
        }
        let headerBytes = Int(UInt16(littleEndian: header.loadUnaligned(fromByteOffset: 10, as: UInt16.self)))
        let eventHeader = Int(UInt16(littleEndian: header.loadUnaligned(fromByteOffset: 12, as: UInt16.self)))
        let argumentHeader = Int(UInt16(littleEndian: header.loadUnaligned(fromByteOffset: 14, as: UInt16.self)))
        guard headerBytes == Recording.fileHeaderBytes, eventHeader == MemoryLayout<sensor_event_header>.size,
            argumentHeader == MemoryLayout<sensor_arg_header>.size
        else {
            throw RecordingError(
                "the recording was written with another record layout (header \(headerBytes), event header \(eventHeader), argument header \(argumentHeader) bytes)"
            )
        }
        bootTimeOffset = UInt64(littleEndian: header.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        start = Recording.fileHeaderBytes
        fileOffset = Recording.fileHeaderBytes
    }

    /// Makes at least `count` bytes available from `start`; false at the end of the file first.
    private func fill(_ count: Int) throws -> Bool {
        while end - start < count {
            if atEndOfFile { return false }
            if start > 0 {
                let pending = end - start
                if pending > 0, let base = buffer.baseAddress { memmove(base, base + start, pending) }
                start = 0
                end = pending
            }
            let got = read(fileDescriptor, buffer.baseAddress! + end, buffer.count - end)
            if got < 0 {
                if errno == EINTR { continue }
                throw RecordingError("reading the recording failed: \(String(cString: strerror(errno)))")
            }
            if got == 0 { atEndOfFile = true } else { end += got }
        }
        return true
    }

    /// Calls `body` with each event in file order (valid only during the call), until the `end`
    /// frame; throws at the first fault, or when the file ends without its `end` frame.
    public func forEachEvent(_ body: (RawEvent) throws -> Void) throws {
        while totals == nil {
            guard try fill(4) else {
                if end > start {
                    throw RecordingError(
                        "the recording is truncated at byte \(fileOffset): \(end - start) bytes of a frame's 4-byte length"
                    )
                }
                throw RecordingError(
                    "the recording ends at byte \(fileOffset) without its end frame: the trace was cut short (killed, or the disk filled); \(events) events before that"
                )
            }
            let word = UInt32(
                littleEndian: UnsafeRawBufferPointer(buffer).loadUnaligned(fromByteOffset: start, as: UInt32.self))
            let length = Int(word & 0xFF_FFFF)
            guard let kind = Recording.FrameKind(rawValue: UInt8(word >> 24)), length <= Recording.maximumFrameBytes
            else {
                throw RecordingError(
                    "the recording is corrupted at byte \(fileOffset): frame kind \(word >> 24), length \(length)")
            }
            guard try fill(4 + length) else {
                throw RecordingError(
                    "the recording is truncated at byte \(fileOffset): a frame of \(length) bytes, \(end - start - 4) of them in the file"
                )
            }
            let payload = UnsafeRawBufferPointer(rebasing: buffer[(start + 4)..<(start + 4 + length)])
            switch kind {
            case .event:
                guard let event = RawEvent(payload) else {
                    throw RecordingError(
                        "the recording is corrupted at byte \(fileOffset): an event of \(length) bytes whose header says otherwise"
                    )
                }
                guard containers[event.header.cgroup_id] != nil else {
                    throw RecordingError(
                        "the recording is corrupted at byte \(fileOffset): an event of cgroup \(event.header.cgroup_id), which no container frame before it describes"
                    )
                }
                events += 1
                try body(event)
            case .container:
                try readContainer(payload)
            case .end:
                guard length == 24 else {
                    throw RecordingError(
                        "the recording is corrupted at byte \(fileOffset): an end frame of \(length) bytes")
                }
                let totals = Recording.Totals(
                    events: UInt64(littleEndian: payload.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                    lost: UInt64(littleEndian: payload.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                    filtered: UInt64(littleEndian: payload.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
                guard totals.events == events else {
                    throw RecordingError(
                        "the recording is corrupted: its end frame counts \(totals.events) events, the file holds \(events)"
                    )
                }
                self.totals = totals
            }
            start += 4 + length
            fileOffset += 4 + length
        }
        if try fill(1) {
            throw RecordingError("the recording is corrupted: bytes after its end frame at byte \(fileOffset)")
        }
    }

    private func readContainer(_ payload: UnsafeRawBufferPointer) throws {
        let fault = RecordingError(
            "the recording is corrupted at byte \(fileOffset): a container frame of \(payload.count) bytes that does not parse"
        )
        guard payload.count >= 9 else { throw fault }
        let cgroup = UInt64(littleEndian: payload.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard containers[cgroup] == nil else {
            throw RecordingError(
                "the recording is corrupted at byte \(fileOffset): a second container frame for cgroup \(cgroup)")
        }
        // Each cgroup's container is kept for the whole read: a file of endless container frames
        // must not grow the reader without bound.
        guard containers.count < Recording.maximumContainers else {
            throw RecordingError(
                "the recording is corrupted at byte \(fileOffset): more than \(Recording.maximumContainers) container frames"
            )
        }
        switch payload[8] {
        case 0:
            guard payload.count == 9 else { throw fault }
            containers[cgroup] = .some(nil)
        case 1:
            var offset = 9
            var texts: [String] = []
            for _ in 0..<4 {
                guard offset + 4 <= payload.count else { throw fault }
                let count = Int(UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                offset += 4
                guard count <= Recording.maximumStringBytes, offset + count <= payload.count else { throw fault }
                texts.append(String(decoding: payload[offset..<(offset + count)], as: UTF8.self))
                offset += count
            }
            guard offset == payload.count else { throw fault }
            containers[cgroup] = ContainerInfo(id: texts[0], name: texts[1], image: texts[2], imageDigest: texts[3])
        default:
            throw fault
        }
    }
}
