import Foundation
import Sensor
import SensorBPF
import Testing

/// What a process controls reaches the operator's terminal escaped: `trace --format table`
/// shows one line per event with no escape sequence in it; JSON stays exact.
@Suite struct TerminalTextTests {
    @Test func controlCharactersBecomeVisibleEscapes() {
        #expect(TerminalText.escape("plain /usr/bin/bash é 💊") == "plain /usr/bin/bash é 💊")
        #expect(TerminalText.escape("\u{1b}]0;owned\u{7}\u{1b}[2J") == "\\x1b]0;owned\\x07\\x1b[2J")
        #expect(TerminalText.escape("a\nFAKE ALERT\r\tb") == "a\\nFAKE ALERT\\r\\tb")
        #expect(TerminalText.escape("\u{0}\u{7f}") == "\\x00\\x7f")
        #expect(
            TerminalText.escape("x\u{9b}31mred\u{85}") == "x\\u{9b}31mred\\u{85}", "C1: U+009B is a one-character CSI")
        #expect(TerminalText.escape("evil\u{202e}txt.exe\u{2066}") == "evil\\u{202e}txt.exe\\u{2066}", "bidi overrides")
        #expect(
            TerminalText.escape("bad \u{FFFD} utf8") == "bad \u{FFFD} utf8",
            "invalid UTF-8 arrives as U+FFFD and stays visible")
        #expect(TerminalText.escape("C:\\path") == "C:\\path")
    }

    @Test func theTableLineHasNoControlCharacters() throws {
        var openat = SyntheticRecord(eventID: 257, comm: "a\u{1b}[31mb\u{9b}")
        openat.integer(0, .s32, UInt64(bitPattern: -100))
        openat.argument(1, .string, Array("/tmp/\u{1b}]0;pwned\u{7}\nFAKE\u{7f}".utf8) + [0xFF, 0xC2, 0x9B, 0])
        openat.integer(2, .s32, 0)
        openat.integer(3, .u32, 0)
        let resolver = ContainerResolver(
            hierarchy: CgroupHierarchy(root: "/nonexistent-\(getpid())", isV1: true, subsystemIndex: 0))
        let line = openat.withEvent { TableEventWriter(bootTimeOffset: 0, containers: resolver).line($0) }
        let body = try #require(line.utf8.last == 0x0A ? String(line.dropLast()) : nil)
        #expect(
            !body.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) },
            "\(body.debugDescription)")
        #expect(body.contains("a\\x1b[31mb"))
        #expect(body.contains("/tmp/\\x1b]0;pwned\\x07\\nFAKE\\x7f\u{FFFD}\\u{9b}"))
    }
}
