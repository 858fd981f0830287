import JSON

/// What a hostile request's answer must be: never a 5xx, an OperationOutcome for every error,
/// and within a time limit.
public enum HostileResponseCheck {
    /// The broken promises of one answer, empty when it holds. A HEAD answer has no body, and
    /// neither has any answer to CONNECT on the wire (NIO writes none: the server answers 405
    /// and closes the connection, ConnectMethodTests), so only their status and time count.
    public static func problems(method: String, status: Int, body: [UInt8], seconds: Double, timeLimit: Double)
        -> [String]
    {
        var problems: [String] = []
        if status >= 500 { problems.append("5xx") }
        if status >= 400, method != "HEAD", method != "CONNECT", !isOperationOutcome(body) {
            problems.append("error without OperationOutcome")
        }
        if seconds > timeLimit { problems.append("slower than \(timeLimit) s") }
        return problems
    }

    public static func isOperationOutcome(_ body: [UInt8]) -> Bool {
        guard let json = try? JSONParser.parse(body) else { return false }
        return json["resourceType"]?.stringValue == "OperationOutcome"
    }

    /// The first issue's diagnostics of an OperationOutcome, else the start of the body.
    public static func excerpt(_ body: [UInt8], limit: Int = 200) -> String {
        if let json = try? JSONParser.parse(body), let issue = json["issue"]?.arrayValue?.first {
            let text = issue["diagnostics"]?.stringValue ?? issue["details"]?["text"]?.stringValue ?? ""
            return String(text.prefix(limit))
        }
        return String(String(decoding: body.prefix(limit), as: UTF8.self))
    }

    /// A failure's class: the problem, the status and the shape of the server's message
    /// (numbers and quoted values blanked), so that one defect hit a thousand times, by
    /// whatever request, is listed once.
    public static func failureClass(status: Int, problems: [String], body: [UInt8]) -> String {
        var shape = ""
        var quoted = false
        for character in excerpt(body, limit: 90) {
            if character == "'" {
                quoted.toggle()
                shape.append("'")
            } else if quoted {
                continue
            } else {
                shape.append(character.isNumber ? "#" : character)
            }
        }
        return "\(problems.joined(separator: ", ")) | \(status) | \(shape)"
    }
}
