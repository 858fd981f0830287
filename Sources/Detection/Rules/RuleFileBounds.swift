/// The bounds a rule file must stay within before any of it is parsed. Rule files are
/// hostile input: a file may not crash, hang or exhaust the process that loads it.
public enum RuleFileBounds {
    /// Bytes of one rule file.
    public static let fileBytes = 8 * 1024 * 1024
    /// How deep a rule file's YAML may nest (Falco's files nest 5 deep). Yams builds its
    /// nodes recursively and overflows the stack somewhere past a few thousand levels, so the
    /// text is measured before Yams sees it.
    public static let yamlNesting = 64
    /// Items of one list with the lists it names expanded.
    public static let listItems = 100_000
    /// Bytes of one list with the lists it names expanded (YAML aliases can repeat one long
    /// item many times at the cost of a few bytes each).
    public static let listBytes = 16 * 1024 * 1024
    /// Nodes of all rules' conditions together, expanded.
    public static let totalNodes = 5_000_000
    /// How deep macros may name macros that name macros.
    public static let macroChain = 200

    /// Where the YAML `text` nests deeper than `yamlNesting`, or nil. The measure is an upper
    /// bound of the real nesting, cheap and without recursion: on each line, twice the block
    /// indentation levels open (a level may hold a mapping and a sequence at one
    /// indentation), plus the `- `, `? ` and `key: ` indicators on the line (compact
    /// nesting), plus the flow collections (`[`, `{`) open. Block scalars' content (after
    /// `|` or `>`), comments and quoted text are skipped.
    public static func nestingProblem(_ text: String) -> (line: Int, column: Int, depth: Int)? {
        var indents: [Int] = []
        var flow = 0
        var blockScalarIndent: Int? = nil
        var lineNumber = 0
        var problem: (line: Int, column: Int, depth: Int)? = nil
        func measure(_ line: ArraySlice<UInt8>) {
            lineNumber += 1
            var i = line.startIndex
            while i < line.endIndex && line[i] == UInt8(ascii: " ") { i += 1 }
            let indent = i - line.startIndex
            let blank = i == line.endIndex || line[i] == UInt8(ascii: "#") || line[i] == UInt8(ascii: "\r")
            if let parent = blockScalarIndent {
                if blank || indent > parent { return }
                blockScalarIndent = nil
            }
            if blank { return }
            if flow == 0 {
                while let last = indents.last, last > indent { indents.removeLast() }
                if indents.last != indent { indents.append(indent) }
            }
            var indicators = 0
            var quote: UInt8? = nil
            var afterColon = false
            var j = i
            while j < line.endIndex {
                let c = line[j]
                let next: UInt8 = j + 1 < line.endIndex ? line[j + 1] : UInt8(ascii: " ")
                // `key: plain text`: the rest of the line is one scalar (brackets, dashes and
                // colons in a description are text, not nesting).
                if afterColon && flow == 0 && quote == nil && c != UInt8(ascii: " ") {
                    afterColon = false
                    if !"[{\"'|>&*!#".utf8.contains(c) { break }
                }
                if let q = quote {
                    if c == q { quote = nil }
                    if c == UInt8(ascii: "\\") && q == UInt8(ascii: "\"") { j += 1 }
                } else if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
                    let previous: UInt8 = j > i ? line[j - 1] : UInt8(ascii: " ")
                    if [UInt8(ascii: " "), UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: ","), UInt8(ascii: ":")]
                        .contains(previous)
                    {
                        quote = c
                    }
                } else if c == UInt8(ascii: "#") && (j == i || line[j - 1] == UInt8(ascii: " ")) {
                    break
                } else if c == UInt8(ascii: "[") || c == UInt8(ascii: "{") {
                    flow += 1
                } else if (c == UInt8(ascii: "]") || c == UInt8(ascii: "}")) && flow > 0 {
                    flow -= 1
                } else if (c == UInt8(ascii: "-") || c == UInt8(ascii: "?"))
                    && (j == i || line[j - 1] == UInt8(ascii: " "))
                    && (next == UInt8(ascii: " ") || next == UInt8(ascii: "\r"))
                {
                    indicators += 1
                } else if c == UInt8(ascii: ":")
                    && (next == UInt8(ascii: " ") || next == UInt8(ascii: "\r") || j + 1 == line.endIndex)
                {
                    indicators += 1
                    afterColon = true
                }
                j += 1
                let depth = 2 * indents.count + indicators + flow
                if depth > yamlNesting && problem == nil {
                    problem = (lineNumber, j - line.startIndex, depth)
                    return
                }
            }
            // `key: |`, `key: >-`, `- |2`: the lines after are the scalar's text.
            if flow == 0, quote == nil {
                var k = j - 1
                while k >= i && (line[k] == UInt8(ascii: " ") || line[k] == UInt8(ascii: "\r")) { k -= 1 }
                while k >= i
                    && (line[k] == UInt8(ascii: "-") || line[k] == UInt8(ascii: "+")
                        || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(line[k]))
                { k -= 1 }
                if k >= i && (line[k] == UInt8(ascii: "|") || line[k] == UInt8(ascii: ">"))
                    && (k == i || line[k - 1] == UInt8(ascii: " "))
                {
                    blockScalarIndent = indent
                }
            }
        }
        var utf8 = Array(text.utf8)
        utf8.append(UInt8(ascii: "\n"))
        var start = 0
        for index in utf8.indices where utf8[index] == UInt8(ascii: "\n") {
            measure(utf8[start..<index])
            if problem != nil { return problem }
            start = index + 1
        }
        return problem
    }
}
