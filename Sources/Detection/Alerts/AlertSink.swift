/// Where a `DetectionPipeline` sends the alerts it keeps: the last stage, after enforcement
/// and throttling. The file, webhook and audit-feed outputs implement it in the
/// `DetectionOutputs` module, so the engine needs no HTTP client.
///
/// Sinks are called on the pipeline's reading thread (and the fanotify guard's, one at a time)
/// and must not block it.
public protocol AlertSink: AnyObject {
    func write(_ alert: Alert)
    /// Delivers what is pending; returns problems worth telling the user (failed deliveries).
    func finish() -> [String]
}
