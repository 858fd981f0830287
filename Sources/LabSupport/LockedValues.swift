import Foundation

/// A counter that concurrent tasks draw consecutive numbers from (0, 1, 2, ...): the index of
/// the next unit of work each of a benchmark's or a workload's clients takes.
public final class LockedCounter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()

    /// A counter whose first number is 0.
    public init() {}

    /// The next number; each is handed out once.
    public func next() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value - 1
    }
}

/// A fixed number of slots that concurrent tasks fill, each its own index: the results of a
/// benchmark's or a workload's clients, read once all are done.
public final class LockedArray<Element>: @unchecked Sendable {
    private var storage: [Element?]
    private let lock = NSLock()

    /// `count` empty slots.
    public init(count: Int) { storage = Array(repeating: nil, count: count) }

    /// Fills slot `index`.
    public func set(_ index: Int, _ value: Element) {
        lock.lock()
        storage[index] = value
        lock.unlock()
    }

    /// Every slot's value, in order; every slot must have been filled.
    public var values: [Element] {
        lock.lock()
        defer { lock.unlock() }
        return storage.map { $0! }
    }
}
