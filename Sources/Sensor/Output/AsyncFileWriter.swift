import Foundation

/// Writes filled buffers to a file descriptor on its own thread, so the thread reading
/// the ring buffer never waits on disk. A small pool of buffers is recycled; when all
/// are queued the reader waits (and the kernel counts what the ring buffer then drops).
public final class AsyncFileWriter: @unchecked Sendable {
    public let fileDescriptor: Int32
    private let queue = DispatchQueue(label: "caduceus.sensor.output")
    private let lock = NSLock()
    private let available: DispatchSemaphore
    private var pool: [OutputBuffer]
    private var writeError: Int32 = 0
    public private(set) var bytesWritten: UInt64 = 0

    public init(fileDescriptor: Int32, bufferBytes: Int = 1 << 20, buffers: Int = 8) {
        self.fileDescriptor = fileDescriptor
        pool = (0..<buffers).map { _ in OutputBuffer(capacity: bufferBytes) }
        available = DispatchSemaphore(value: buffers)
    }

    /// A buffer to fill; blocks while every buffer is queued for writing.
    public func take() -> OutputBuffer {
        available.wait()
        lock.lock()
        defer { lock.unlock() }
        return pool.removeLast()
    }

    /// A buffer to fill if one is free now; nil while every buffer is queued for writing.
    public func takeIfFree() -> OutputBuffer? {
        guard available.wait(timeout: .now()) == .success else { return nil }
        lock.lock()
        defer { lock.unlock() }
        return pool.removeLast()
    }

    /// Queues a filled buffer; it comes back to the pool once written.
    public func submit(_ buffer: OutputBuffer) {
        queue.async { [self] in
            var offset = 0
            while offset < buffer.count {
                let written = write(fileDescriptor, buffer.storage + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    lock.lock()
                    writeError = errno
                    lock.unlock()
                    break
                }
                offset += written
            }
            buffer.count = 0
            lock.lock()
            bytesWritten += UInt64(offset)
            pool.append(buffer)
            lock.unlock()
            available.signal()
        }
    }

    /// Waits for every queued buffer; throws if a write failed (disk full, closed pipe).
    public func flush() throws {
        queue.sync {}
        lock.lock()
        defer { lock.unlock() }
        if writeError != 0 { throw BPFError(operation: "write events", errno: writeError) }
    }
}
