import AsyncHTTPClient
import Detection
import Foundation
import JSON
import NIOCore
import NIOHTTP1

/// Feeds alerts to a FHIR server's audit trail (IHE RESTful ATNA style): each alert is POSTed
/// to `<base>/AuditEvent` as a DICOM 110113 Security Alert (``Alert/auditEvent(site:)``), with
/// `Authorization: Bearer <token>` (the server's audit feed token, or a JWT granting
/// `system/AuditEvent.c`).
///
/// Detection never waits for the server: ``write(_:)`` only queues the event; one task sends
/// what is queued, in order, retrying a failed delivery (no answer, 5xx, 408, 429) with
/// backoff; a refusal (any other 4xx) is not retried. When `capacity` events wait, the oldest
/// is dropped (counted, with a warning). ``finish()`` sends what is left, for at most
/// `flushTimeout` seconds, and reports how many alerts were fed, failed and dropped.
public final class AuditEventAlertSink: AlertSink, @unchecked Sendable {
    public let endpoint: String
    let token: String?
    let capacity: Int
    let attempts: Int
    let firstBackoff: Double
    let flushTimeout: Double
    let site: String
    let client: HTTPClient
    let warn: @Sendable (String) -> Void

    private let lock = NSCondition()
    private var queue: [(alert: String, body: [UInt8])] = []
    private var draining = false
    private var closing = false
    private var fed = 0
    private var failed = 0
    /// Set when ``finish()`` stopped waiting for a delivery under way and counted it failed:
    /// its late end must not change the counts the summary gave.
    private var abandoned = false
    /// An alert taken from the queue and not yet settled (the drain may still be running
    /// without one: between settling an alert and finding the queue empty).
    private var inFlight = false
    private var dropped = 0
    private var problems: [String] = []
    /// Set by ``finish()``, which stops the client.
    private var finished = false

    /// `base` is the FHIR API's base URL (`http://127.0.0.1:9080/fhir-server/api/v4`).
    /// `attempts` deliveries per alert at most, waiting `firstBackoff` seconds after the first
    /// failure, twice as long after each next (at most 8 s). `site` is each event's
    /// `source.site`, the machine the sensor watches (default: this host's name; in a pod, the
    /// node's name, since the pod's host name is the pod's). `warn` gets the dropped-alert
    /// warnings (standard error by default).
    public init(
        base: String, token: String?, site: String? = nil, capacity: Int = 1000, attempts: Int = 5,
        firstBackoff: Double = 0.25,
        flushTimeout: Double = 10,
        warn: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
    ) throws {
        var base = base
        while base.hasSuffix("/") { base.removeLast() }
        guard let parsed = URL(string: base), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw AlertOutputError(
                source: "--audit-url", message: "'\(base)' is not an http(s) URL of a FHIR server's base")
        }
        if let token, token.isEmpty || token.contains(where: { $0.isWhitespace || $0.isNewline }) {
            throw AlertOutputError(source: "--audit-token-file", message: "the token is empty or contains white space")
        }
        if let site, site.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty || site.utf8.count > Self.siteLimit {
            throw AlertOutputError(
                source: "--audit-site", message: "the site must be 1 to \(Self.siteLimit) bytes, not blank")
        }
        endpoint = base + "/AuditEvent"
        self.token = token
        self.capacity = max(1, capacity)
        self.attempts = max(1, attempts)
        self.firstBackoff = firstBackoff
        self.flushTimeout = flushTimeout
        self.warn = warn
        self.site = site ?? ProcessInfo.processInfo.hostName
        // The feed retries with its own backoff: a server that is down fails a try at once,
        // instead of the client retrying the connection until the request's deadline.
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout = .init(connect: .seconds(3))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// The longest `site` accepted: a DNS name's 253 bytes, with room.
    public static let siteLimit = 255

    /// Reads the bearer token from `path` (surrounding white space trimmed).
    public static func token(fromFile path: String) throws -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw AlertOutputError(source: path, message: "cannot read the audit token file")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw AlertOutputError(source: path, message: "the audit token file is empty") }
        return token
    }

    public func write(_ alert: Alert) {
        let body = JSONWriter().bytes(alert.auditEvent(site: site))
        let name = "\(alert.ruleId) at \(alert.time)"
        lock.lock()
        var warning: String?
        if queue.count >= capacity {
            queue.removeFirst()
            dropped += 1
            // The first drop, then every thousandth: a flood must not become one on stderr too.
            if dropped == 1 || dropped % 1000 == 0 {
                warning = "audit feed \(endpoint): \(capacity) alerts waiting, the oldest dropped (\(dropped) so far)"
            }
        }
        queue.append((name, body))
        let start = !draining
        draining = true
        lock.unlock()
        if let warning { warn(warning) }
        if start { Task { await self.drain() } }
    }

    /// What the drain does with one alert.
    enum Delivery {
        case fed
        /// Worth another try (no answer, 5xx, 408, 429).
        case transient(String)
        /// Refused for good (401, 403, 405, 422, ...).
        case refused(String)
    }

    private func drain() async {
        while let (name, body) = next() {
            var attempt = 1
            var delivery = await send(body)
            while case .transient = delivery, attempt < attempts {
                // Stopping: one more try at once, then on to the rest of the queue.
                if isClosing && attempt >= 2 { break }
                await backOff(attempt)
                attempt += 1
                delivery = await send(body)
            }
            settle(name, delivery)
        }
    }

    /// The next queued alert, or nil (and the drain ends) when none waits.
    private func next() -> (String, [UInt8])? {
        lock.lock()
        defer { lock.unlock() }
        guard !queue.isEmpty else {
            draining = false
            lock.broadcast()
            return nil
        }
        let item = queue.removeFirst()
        inFlight = true
        return (item.alert, item.body)
    }

    private var isClosing: Bool {
        lock.lock()
        defer { lock.unlock() }
        return closing
    }

    private func settle(_ name: String, _ delivery: Delivery) {
        lock.lock()
        defer { lock.unlock() }
        if abandoned { return }
        inFlight = false
        switch delivery {
        case .fed: fed += 1
        case .transient(let problem), .refused(let problem):
            failed += 1
            problems.append("\(name): \(problem)")
        }
    }

    /// Sleeps before the next attempt; cut short when ``finish()`` begins, which allows one
    /// last attempt without waiting.
    private func backOff(_ attempt: Int) async {
        let seconds = min(8, firstBackoff * Double(1 << min(attempt - 1, 10)))
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline, !isClosing {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    private func send(_ body: [UInt8]) async -> Delivery {
        var request = HTTPClientRequest(url: endpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/fhir+json")
        request.headers.add(name: "Accept", value: "application/fhir+json")
        request.headers.add(name: "Prefer", value: "return=minimal")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(request, timeout: .seconds(5))
            let answer = try await response.body.collect(upTo: 1 << 16)
            let status = Int(response.status.code)
            if (200..<300).contains(status) { return .fed }
            var problem = "HTTP \(status)"
            if let outcome = try? JSONParser.parse(Array(answer.readableBytesView)),
                let diagnostics = outcome["issue"]?.arrayValue?.first?["diagnostics"]?.stringValue
            {
                problem += ": \(diagnostics)"
            }
            return status >= 500 || status == 408 || status == 429 ? .transient(problem) : .refused(problem)
        } catch {
            return .transient("\(error)")
        }
    }

    /// Sends what is still queued (at most `flushTimeout` seconds), stops the client, and
    /// returns the count of alerts fed, failed and dropped, then the first failures.
    public func finish() -> [String] {
        lock.lock()
        closing = true
        let deadline = Date().addingTimeInterval(flushTimeout)
        while draining, lock.wait(until: deadline) {}
        // Whatever still waits after the timeout is not sent; the delivery under way is
        // cancelled by the client's shutdown and counted by the drain as it ends.
        let unsent = queue.count
        failed += unsent
        queue.removeAll()
        finished = true
        lock.unlock()
        try? client.syncShutdown()
        lock.lock()
        defer { lock.unlock() }
        let cancelled = Date().addingTimeInterval(2)
        while draining, lock.wait(until: cancelled) {}
        if draining && inFlight {
            // The delivery under way has not ended 2 s after the client's shutdown (a loaded
            // machine): counted failed now, so that the summary and the counts agree. (A drain
            // that settled its last alert and has yet to find the queue empty has none: counting
            // one then made 21 of 20 alerts under a load average of 33.)
            abandoned = true
            failed += 1
            problems.append("a delivery under way when stopping did not end")
        }
        var lines = [
            "audit feed \(endpoint): \(fed) alerts fed, \(failed) failed"
                + (dropped > 0 ? ", \(dropped) dropped (queue full)" : "")
        ]
        lines += problems.prefix(5).map { "audit feed: \($0)" }
        if problems.count > 5 { lines.append("audit feed: \(problems.count - 5) more failures") }
        if unsent > 0 {
            lines.append("audit feed: \(unsent) alerts not sent within \(Int(flushTimeout)) s of stopping")
        }
        return lines
    }

    /// A sink released without ``finish()`` (detect failed after making it: no BPF, a bad
    /// rule) stops its client: one released running stops the process (SIGILL) in a debug build.
    deinit {
        if !finished { client.shutdown { _ in } }
    }

    /// Alerts fed so far, failed and dropped.
    public var counts: (fed: Int, failed: Int, dropped: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (fed, failed, dropped)
    }
}
