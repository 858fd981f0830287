import Foundation

/// Reads a file or pipe in 4 MiB chunks with read(2) and hands each line (without its newline)
/// to `body` as bytes in the chunk, with no copy per line; a last line without a newline counts
/// too. A line longer than the buffer grows it. An error thrown by `body` stops the reading.
///
/// `JSONLines` hands out `Data` slices; at a million lines a second their per-line reference
/// counting and the copy of each chunk's unread tail were a tenth of the reader's time.
enum TraceLineChunks {
    static let chunkSize = 4 << 20

    static func forEach(
        fileDescriptor: Int32, chunkSize: Int = chunkSize, _ body: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        var capacity = max(chunkSize, 1)
        var buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        var filled = 0
        while true {
            if filled == capacity {  // one line fills the buffer: make room for more of it
                let larger = UnsafeMutableRawPointer.allocate(byteCount: capacity * 2, alignment: 16)
                larger.copyMemory(from: buffer, byteCount: filled)
                buffer.deallocate()
                buffer = larger
                capacity *= 2
            }
            let count = read(fileDescriptor, buffer + filled, capacity - filled)
            if count < 0 {
                if errno == EINTR { continue }
                throw SensorConfigurationError(description: "reading the trace: \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            let scanFrom = filled
            filled += count
            var start = 0
            var next = scanFrom
            while next < filled, let newline = memchr(buffer + next, 0x0A, filled - next) {
                let end = buffer.distance(to: newline)
                try body(UnsafeRawBufferPointer(start: buffer + start, count: end - start))
                start = end + 1
                next = start
            }
            if start > 0 {
                memmove(buffer, buffer + start, filled - start)
                filled -= start
            }
        }
        if filled > 0 { try body(UnsafeRawBufferPointer(start: buffer, count: filled)) }
    }
}
