/// Keeps a flood of one rule in one container (a fork bomb refused 6,000 times, a scanner's
/// every probe) from burying every other alert: per rule and container, a burst of `burst`
/// alerts, then one per `interval` seconds; the rest are counted, not raised.
///
/// Time is the events' own (`Alert.timestamp`), so a recorded trace is throttled as it was
/// live. Not thread-safe: one engine feeds it.
public final class AlertThrottle {
    struct Key: Hashable {
        let rule: String
        let container: String
    }

    struct Bucket {
        var tokens: Double
        var last: UInt64
        var suppressed: Int
        var container: String
    }

    public let burst: Int
    public let interval: Double
    private var buckets: [Key: Bucket] = [:]

    /// `burst` alerts at once per rule and container, then one per `interval` seconds.
    public init(burst: Int = 10, interval: Double = 1) {
        self.burst = max(1, burst)
        self.interval = max(0.001, interval)
    }

    /// Whether to raise `alert`; false counts it as suppressed.
    public func admit(_ alert: Alert) -> Bool {
        let key = Key(rule: alert.ruleId, container: alert.container.id)
        var bucket =
            buckets[key]
            ?? Bucket(
                tokens: Double(burst), last: alert.timestamp, suppressed: 0,
                container: alert.container.name.isEmpty ? String(alert.container.id.prefix(12)) : alert.container.name)
        if alert.timestamp > bucket.last {
            bucket.tokens = min(Double(burst), bucket.tokens + Double(alert.timestamp - bucket.last) / 1e9 / interval)
            bucket.last = alert.timestamp
        }
        let admitted = bucket.tokens >= 1
        if admitted { bucket.tokens -= 1 } else { bucket.suppressed += 1 }
        buckets[key] = bucket
        return admitted
    }

    /// What was suppressed, per rule and container (name, else short id), most first.
    public var suppressed: [(rule: String, container: String, count: Int)] {
        buckets.compactMap { key, bucket in
            bucket.suppressed > 0 ? (key.rule, bucket.container, bucket.suppressed) : nil
        }
        .sorted { ($0.count, $1.rule) > ($1.count, $0.rule) }
    }
}
