import SensorBPF

/// `caduceus trace --format record`: the ring buffer's records as they came, so the reader does
/// almost nothing per event, with what a record does not hold (the boot time, each cgroup's
/// container) written once. `RecordingReader` turns it back into the exact Tracee JSON.
///
/// Layout, little-endian throughout:
/// - a 32-byte file header: the magic `CADUCREC`, the format version (u16), the header's size
///   (u16), the size of `sensor_event_header` and of `sensor_arg_header` the records were
///   written with (u16 each), the boot time offset in ns (u64), 8 reserved bytes (zero);
/// - frames, each a u32 (kind in the top 8 bits, payload length in the low 24) and its payload:
///   - `event`: one ring buffer record, exactly `header.size` bytes;
///   - `container`: the cgroup id (u64), 1 when it is a container's (else 0 and nothing more),
///     then its id, name, image and image digest, each a u32 length and UTF-8 bytes; written
///     before the first event of that cgroup, once;
///   - `end`: events written (u64), lost in the kernel (u64), filtered out (u64): the last frame.
public enum Recording {
    /// The file's first 8 bytes.
    public static let magic: [UInt8] = Array("CADUCREC".utf8)
    /// The format version this build writes and reads.
    public static let version: UInt16 = 1
    /// Size of the file header.
    public static let fileHeaderBytes = 32
    /// Frames larger than this are refused when reading (the largest real one, a container's
    /// four strings, is far smaller; an event is at most 65,535 bytes).
    public static let maximumFrameBytes = 1 << 20
    /// Each of a container frame's strings, at most (longer ones are cut when written).
    public static let maximumStringBytes = 16 << 10
    /// The most cgroups one recording may describe: far above a machine's, so only a hostile
    /// or corrupted file reaches it.
    public static let maximumContainers = 1 << 16

    /// What a frame holds.
    public enum FrameKind: UInt8, Sendable {
        case event = 1
        case container = 2
        case end = 3
    }

    /// The counters of the `end` frame.
    public struct Totals: Sendable, Equatable {
        /// Events written to the recording.
        public var events: UInt64
        /// Events the kernel dropped (ring buffer full) during the trace.
        public var lost: UInt64
        /// Events the argument filters left out.
        public var filtered: UInt64
        public init(events: UInt64, lost: UInt64, filtered: UInt64) {
            self.events = events
            self.lost = lost
            self.filtered = filtered
        }
    }

    /// The file header for records written with this build's layout.
    public static func fileHeader(bootTimeOffset: UInt64) -> [UInt8] {
        var bytes = magic
        append(&bytes, version)
        append(&bytes, UInt16(fileHeaderBytes))
        append(&bytes, UInt16(MemoryLayout<sensor_event_header>.size))
        append(&bytes, UInt16(MemoryLayout<sensor_arg_header>.size))
        append(&bytes, bootTimeOffset)
        append(&bytes, UInt64(0))
        return bytes
    }

    /// A frame's leading word.
    @inline(__always)
    static func frameWord(_ kind: FrameKind, length: Int) -> UInt32 {
        UInt32(kind.rawValue) << 24 | UInt32(truncatingIfNeeded: length)
    }

    /// A container frame: what `JSONEventWriter` writes for the events of `cgroupID`.
    public static func containerFrame(cgroupID: UInt64, container: ContainerInfo?) -> [UInt8] {
        var payload: [UInt8] = []
        append(&payload, cgroupID)
        if let container {
            payload.append(1)
            // Cut as `JSONEventWriter` cuts them (it cuts again, to the same).
            let texts =
                [container.id]
                + [container.name, container.image, container.imageDigest].map { String($0.prefix(1000)) }
            for text in texts {
                let bytes = Array(text.utf8.prefix(maximumStringBytes))
                append(&payload, UInt32(bytes.count))
                payload += bytes
            }
        } else {
            payload.append(0)
        }
        var frame: [UInt8] = []
        append(&frame, frameWord(.container, length: payload.count))
        return frame + payload
    }

    /// The last frame: the trace's counters.
    public static func endFrame(_ totals: Totals) -> [UInt8] {
        var frame: [UInt8] = []
        append(&frame, frameWord(.end, length: 24))
        append(&frame, totals.events)
        append(&frame, totals.lost)
        append(&frame, totals.filtered)
        return frame
    }

    static func append<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }
}

/// The live side of a recording: on the reading thread, one frame word and a copy per event,
/// and a container frame the first time a cgroup is seen.
struct RecordingEncoder {
    let containers: (UInt64) -> ContainerInfo?
    private var seen: Set<UInt64> = []
    private var lastCgroup: UInt64?

    init(containers: @escaping (UInt64) -> ContainerInfo?) {
        self.containers = containers
    }

    /// Room an event needs in the buffer, at most: its record, its frame word and a container frame.
    static let maximumEventBytes = 65_535 + 4 + 4 * Recording.maximumStringBytes + 64

    @inline(__always)
    mutating func write(_ event: RawEvent, to out: OutputBuffer) {
        let cgroup = event.header.cgroup_id
        if cgroup != lastCgroup {
            lastCgroup = cgroup
            if seen.insert(cgroup).inserted {
                out.append(Recording.containerFrame(cgroupID: cgroup, container: containers(cgroup)))
            }
        }
        var word = Recording.frameWord(.event, length: event.bytes.count).littleEndian
        withUnsafeBytes(of: &word) { out.append($0) }
        out.append(event.bytes)
    }
}
