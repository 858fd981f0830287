/// Text a container controls (process names, arguments, file names), made safe for a
/// terminal or a one-line log: control characters become visible escapes, so that an escape
/// sequence cannot move the cursor, retitle the window, hide what follows or forge a line.
///
/// - C0 controls and DEL: `\n`, `\r`, `\t`, and `\xNN` for the others (ESC is `\x1b`);
/// - C1 controls (U+0080–U+009F, U+009B is a one-character CSI): `\u{9b}`;
/// - bidirectional overrides and isolates and the line and paragraph separators, which
///   reorder or break what is shown (U+061C, U+200E, U+200F, U+2028–U+202E, U+2066–U+2069):
///   `\u{202e}`.
///
/// Invalid UTF-8 never reaches here: the sensor decodes the kernel's bytes to Strings with
/// U+FFFD in place of each invalid sequence. A backslash is left as it is. JSON output does
/// not use this: its own escaping keeps the text exact.
public enum TerminalText {
    /// Whether a scalar must be shown as an escape.
    @inline(__always)
    static func isUnsafe(_ value: UInt32) -> Bool {
        value < 0x20 || (value >= 0x7F && value <= 0x9F) || value == 0x061C || value == 0x200E || value == 0x200F
            || (value >= 0x2028 && value <= 0x202E) || (value >= 0x2066 && value <= 0x2069)
    }

    public static func escape(_ text: String) -> String {
        // Most text is plain: one pass over the bytes, no copy.
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 >= 0xC2 }) { return text }
        if !text.unicodeScalars.contains(where: { isUnsafe($0.value) }) { return text }
        var result = ""
        result.reserveCapacity(text.utf8.count + 16)
        for scalar in text.unicodeScalars {
            let value = scalar.value
            guard isUnsafe(value) else {
                result.unicodeScalars.append(scalar)
                continue
            }
            switch value {
            case 0x0A: result += "\\n"
            case 0x0D: result += "\\r"
            case 0x09: result += "\\t"
            case ..<0x80: result += "\\x" + hex(value, digits: 2)
            default: result += "\\u{" + String(value, radix: 16) + "}"
            }
        }
        return result
    }

    public static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
