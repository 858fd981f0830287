@testable import FHIR
import Testing

@Suite struct FHIRDateRangeTests {
    @Test(arguments: [
        ("2020", "2020-01-01T00:00:00.000Z", "2021-01-01T00:00:00.000Z"),
        ("2020-02", "2020-02-01T00:00:00.000Z", "2020-03-01T00:00:00.000Z"),
        ("2020-12", "2020-12-01T00:00:00.000Z", "2021-01-01T00:00:00.000Z"),
        ("2020-02-29", "2020-02-29T00:00:00.000Z", "2020-03-01T00:00:00.000Z"),
        ("2020-02-29T10:15:30Z", "2020-02-29T10:15:30.000Z", "2020-02-29T10:15:31.000Z"),
        ("2020-02-29T10:15:30.25+02:00", "2020-02-29T08:15:30.250Z", "2020-02-29T08:15:30.251Z"),
        ("1969-07-20T20:17", "1969-07-20T20:17:00.000Z", "1969-07-20T20:18:00.000Z"),
    ])
    func precisionBecomesARange(text: String, low: String, high: String) throws {
        let range = try #require(FHIRDateRange(parsing: text))
        #expect(FHIRDateRange.instantString(milliseconds: range.low) == low)
        #expect(FHIRDateRange.instantString(milliseconds: range.high) == high)
    }

    @Test(arguments: [
        "", "20", "2020-13", "2019-02-29", "2020-01-01T25:00", "2020-01-01X", "2020-01-01T10:00:00+0100", "abcd",
    ])
    func rejectsMalformedDates(text: String) {
        #expect(FHIRDateRange(parsing: text) == nil)
    }

    @Test func formatsHTTPDates() throws {
        let range = try #require(FHIRDateRange(parsing: "1994-11-06T08:49:37Z"))
        #expect(FHIRDateRange.httpDateString(milliseconds: range.low) == "Sun, 06 Nov 1994 08:49:37 GMT")
    }
}
