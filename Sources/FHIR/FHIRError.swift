/// An error the REST API answers with an OperationOutcome and an HTTP status.
public struct FHIRError: Error, Sendable, CustomStringConvertible {
    /// One OperationOutcome issue.
    public struct Issue: Sendable {
        public var severity: String
        /// An `IssueType` code: `invalid`, `not-found`, `conflict`, `not-supported`, ...
        public var code: String
        public var diagnostics: String
        /// FHIRPath locations the issue is about.
        public var expression: [String]

        public init(severity: String = "error", code: String, diagnostics: String, expression: [String] = []) {
            self.severity = severity
            self.code = code
            self.diagnostics = diagnostics
            self.expression = expression
        }
    }

    public var status: Int
    public var issues: [Issue]

    public init(status: Int, code: String, _ diagnostics: String, expression: [String] = []) {
        self.status = status
        issues = [Issue(code: code, diagnostics: diagnostics, expression: expression)]
    }

    public init(status: Int, issues: [Issue]) {
        self.status = status
        self.issues = issues
    }

    public var description: String { "\(status): " + issues.map(\.diagnostics).joined(separator: "; ") }

    public static func badRequest(_ message: String, expression: [String] = []) -> FHIRError {
        FHIRError(status: 400, code: "invalid", message, expression: expression)
    }
    public static func notFound(_ message: String) -> FHIRError {
        FHIRError(status: 404, code: "not-found", message)
    }
    public static func gone(_ message: String) -> FHIRError {
        FHIRError(status: 410, code: "deleted", message)
    }
    public static func conflict(_ message: String) -> FHIRError {
        FHIRError(status: 409, code: "conflict", message)
    }
    public static func preconditionFailed(_ message: String) -> FHIRError {
        FHIRError(status: 412, code: "conflict", message)
    }
    public static func unprocessable(_ message: String, expression: [String] = []) -> FHIRError {
        FHIRError(status: 422, code: "processing", message, expression: expression)
    }

    /// The error as an OperationOutcome resource.
    public var operationOutcome: JSONValue {
        OperationOutcome.make(issues)
    }
}

/// Builds OperationOutcome resources.
public enum OperationOutcome {
    public static func make(_ issues: [FHIRError.Issue]) -> JSONValue {
        .object(
            JSONObject([
                ("resourceType", "OperationOutcome"),
                (
                    "issue",
                    .array(
                        issues.map { issue in
                            var object = JSONObject([
                                ("severity", .string(issue.severity)), ("code", .string(issue.code)),
                                ("diagnostics", .string(issue.diagnostics)),
                            ])
                            if !issue.expression.isEmpty {
                                object["expression"] = .array(issue.expression.map(JSONValue.string))
                            }
                            return .object(object)
                        })
                ),
            ]))
    }

    /// A one-issue informational outcome, as `Prefer: return=OperationOutcome` asks for.
    public static func information(_ message: String) -> JSONValue {
        make([FHIRError.Issue(severity: "information", code: "informational", diagnostics: message)])
    }
}
