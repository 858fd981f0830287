import Foundation

/// A rule's string operands laid out for exact byte matching: one buffer of bytes, the
/// operands grouped by length, so looking a value up is a length index and a few memcmp
/// calls, with no hashing and no reference counting.
struct OperandTable: Sendable {
    /// Every operand's bytes, one after another.
    private let pool: [UInt8]
    /// Per length: the range of `starts` holding the operands of that length.
    private let ranges: [Range<Int>]
    /// Where each operand starts in `pool`, grouped by length.
    private let starts: [Int]
    /// Every operand is ASCII: a byte mismatch with an ASCII text then means the strings differ
    /// for String's comparison too (an ASCII string is its only canonical form).
    let allASCII: Bool

    init(_ operands: [String]) {
        let longest = operands.map(\.utf8.count).max() ?? -1
        var pool: [UInt8] = []
        var ranges: [Range<Int>] = []
        var starts: [Int] = []
        for length in 0..<(longest + 1) {
            let first = starts.count
            for operand in operands where operand.utf8.count == length {
                starts.append(pool.count)
                pool.append(contentsOf: operand.utf8)
            }
            ranges.append(first..<starts.count)
        }
        self.pool = pool
        self.ranges = ranges
        self.starts = starts
        allASCII = operands.allSatisfy { $0.utf8.allSatisfy { $0 < 0x80 } }
    }

    /// Whether `text`'s bytes equal one operand's.
    func contains(_ text: String) -> Bool {
        let count = text.utf8.count
        guard count < ranges.count else { return false }
        let range = ranges.withUnsafeBufferPointer { $0[count] }
        if range.isEmpty { return false }
        if count == 0 { return true }
        return text.utf8.withContiguousStorageIfAvailable { bytes in
            pool.withUnsafeBufferPointer { pool in
                starts.withUnsafeBufferPointer { starts in
                    for index in range where memcmp(pool.baseAddress! + starts[index], bytes.baseAddress!, count) == 0 {
                        return true
                    }
                    return false
                }
            }
        } ?? Self.slowContains(text, pool, starts[range])
    }

    /// For a text without contiguous UTF-8 (a bridged string): copied once.
    private static func slowContains(_ text: String, _ pool: [UInt8], _ starts: ArraySlice<Int>) -> Bool {
        let bytes = Array(text.utf8)
        return starts.contains { pool[$0..<$0 + bytes.count].elementsEqual(bytes) }
    }

    /// Whether a byte mismatch is the whole answer for `text`: it and every operand are ASCII.
    func decides(_ text: String) -> Bool {
        allASCII && Self.isASCII(text)
    }

    static func isASCII(_ text: String) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { bytes in
            var index = 0
            let count = bytes.count
            // Eight bytes at a time: the high bit of any byte marks non-ASCII.
            if count >= 8 {
                let raw = UnsafeRawPointer(bytes.baseAddress!)
                while index + 8 <= count {
                    if raw.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 {
                        return false
                    }
                    index += 8
                }
            }
            while index < count {
                if bytes[index] >= 0x80 { return false }
                index += 1
            }
            return true
        } ?? text.utf8.allSatisfy { $0 < 0x80 }
    }
}

/// A glob operand ready for fnmatch(3): its C string made once, and its literal head and tail
/// (the bytes before the first and after the last wildcard), which a text must start and end
/// with, checked before fnmatch is called.
final class GlobPattern: @unchecked Sendable {
    private let pattern: [CChar]
    private let head: [UInt8]
    private let tail: [UInt8]
    private let flags: Int32

    init(_ operand: String, flags: Int32) {
        // C reads the operand up to its first NUL, as fnmatch(operand, ...) did.
        let bytes = Array(operand.utf8.prefix { $0 != 0 })
        pattern = bytes.map { CChar(bitPattern: $0) } + [0]
        self.flags = flags
        let wildcards: Set<UInt8> = [UInt8(ascii: "*"), UInt8(ascii: "?"), UInt8(ascii: "["), UInt8(ascii: "\\")]
        if flags != 0 {
            // Case folding: the literal parts may match other bytes.
            head = []
            tail = []
        } else if let first = bytes.firstIndex(where: wildcards.contains) {
            head = Array(bytes[..<first])
            let last = bytes.lastIndex { wildcards.contains($0) || $0 == UInt8(ascii: "]") } ?? first
            tail = Array(bytes[(last + 1)...])
        } else {
            head = bytes
            tail = []
        }
    }

    /// fnmatch(3)'s answer for `text` (as C reads it: up to its first NUL).
    func matches(_ text: String) -> Bool {
        text.withCString { subject in
            let count = strlen(subject)
            guard count >= head.count + tail.count else { return false }
            let literalPartsMatch = head.withUnsafeBufferPointer { head in
                tail.withUnsafeBufferPointer { tail in
                    (head.isEmpty || memcmp(subject, head.baseAddress!, head.count) == 0)
                        && (tail.isEmpty || memcmp(subject + (count - tail.count), tail.baseAddress!, tail.count) == 0)
                }
            }
            guard literalPartsMatch else { return false }
            return pattern.withUnsafeBufferPointer { fnmatch($0.baseAddress!, subject, flags) == 0 }
        }
    }
}
