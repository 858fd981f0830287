import FHIR

/// A transaction Bundle's own rules (``ResourceValidator/validateBundleInput(_:)``: bdl-*,
/// unique fullUrls) checked on another task, beside the work that writes nothing: the entries'
/// permission checks, their ids, and the preparation of their creates on every core. Checked
/// first, one core waited for them while the other had nothing to do (7% of a Synthea
/// Bundle's time, BENCHMARKS.md).
///
/// What a client sees is what checking them first gave: no entry runs (is written or read)
/// before they pass (``passed()``), and when they fail their error is the answer, whatever
/// else failed meanwhile.
struct BundleRulesCheck: Sendable {
    private let task: Task<Void, any Error>

    /// Starts checking `bundle`. The check is not a child of the request's task: a request
    /// cancelled while it waits for the check (``passed()``, ``precedence(over:)``) cancels it,
    /// and the check then stops as validation does (``WorkDeadline``); the caller cancels it
    /// when it leaves (``cancel()``).
    init(_ bundle: JSONValue, validator: ResourceValidator) {
        task = Task { try validator.validateBundleInput(bundle) }
    }

    /// Waits for the rules: throws their error when they fail.
    func passed() async throws {
        try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
    }

    /// Stops the check (a request that ends before it was needed).
    func cancel() { task.cancel() }

    /// `error`, unless the rules failed: then theirs, as if they had been checked first.
    func precedence(over error: any Error) async -> any Error {
        let result = await withTaskCancellationHandler {
            await task.result
        } onCancel: {
            task.cancel()
        }
        if case .failure(let failure) = result { return failure }
        return error
    }
}
