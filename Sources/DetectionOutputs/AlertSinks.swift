import AsyncHTTPClient
import Detection
import Foundation
import NIOCore
import NIOHTTP1

/// JSON lines (one alert per line) or the one-line readable form, to a file descriptor.
public final class StreamAlertSink: AlertSink {
    public enum Format: String, Sendable, CaseIterable { case json, line }

    let handle: FileHandle
    let format: Format

    public init(handle: FileHandle, format: Format) {
        self.handle = handle
        self.format = format
    }

    /// Appends to `path`, creating it.
    public convenience init(path: String, format: Format) throws {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw AlertOutputError(source: path, message: "cannot create the alert file")
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw AlertOutputError(source: path, message: "cannot write the alert file")
        }
        handle.seekToEndOfFile()
        self.init(handle: handle, format: format)
    }

    public func write(_ alert: Alert) {
        var data = format == .json ? alert.json() : Data(alert.line.utf8)
        data.append(0x0A)
        handle.write(data)
    }

    public func finish() -> [String] { [] }
}

/// POSTs each alert as JSON to an HTTP endpoint (a SIEM, a chat hook), in the background.
/// At most `maximumPending` deliveries wait; beyond that alerts are counted as dropped,
/// never queued without bound.
public final class WebhookAlertSink: AlertSink, @unchecked Sendable {
    let url: String
    let client: HTTPClient
    let maximumPending: Int
    private let lock = NSLock()
    private var pending = 0
    private var failures: [String] = []
    private var dropped = 0
    private var delivered = 0
    private let group = DispatchGroup()
    /// Set by ``finish()``, which stops the client.
    private var finished = false

    public init(url: String, maximumPending: Int = 1000) throws {
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw AlertOutputError(source: "--webhook", message: "'\(url)' is not an http(s) URL")
        }
        self.url = url
        self.maximumPending = maximumPending
        client = HTTPClient(eventLoopGroupProvider: .singleton)
    }

    public func write(_ alert: Alert) {
        lock.lock()
        guard pending < maximumPending else {
            dropped += 1
            lock.unlock()
            return
        }
        pending += 1
        lock.unlock()
        group.enter()
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: alert.json()))
        Task {
            var problem: String?
            do {
                let response = try await client.execute(request, timeout: .seconds(5))
                if !(200..<300).contains(Int(response.status.code)) { problem = "HTTP \(response.status.code)" }
            } catch {
                problem = "\(error)"
            }
            completed(alert, problem: problem)
        }
    }

    /// Released without ``finish()`` (detect failed after making it): the client is stopped
    /// all the same, as ``AuditEventAlertSink`` does.
    deinit {
        if !finished { client.shutdown { _ in } }
    }

    private func completed(_ alert: Alert, problem: String?) {
        lock.lock()
        pending -= 1
        if let problem { failures.append("\(alert.ruleId) at \(alert.time): \(problem)") } else { delivered += 1 }
        lock.unlock()
        group.leave()
    }

    public func finish() -> [String] {
        _ = group.wait(timeout: .now() + 10)
        lock.withLock { finished = true }
        try? client.syncShutdown()
        lock.lock()
        defer { lock.unlock() }
        var problems = failures.prefix(5).map { "webhook \(url): \($0)" }
        if failures.count > 5 { problems.append("webhook \(url): \(failures.count - 5) more failed deliveries") }
        if dropped > 0 {
            problems.append("webhook \(url): \(dropped) alerts dropped (more than \(maximumPending) waiting)")
        }
        return problems
    }
}
