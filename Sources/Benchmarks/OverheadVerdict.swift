import Foundation

extension OverheadBenchmark {
    /// A throughput goal, judged on a configuration's per-round ratios so that the noise of one
    /// run cannot decide it: the median must reach the goal and the whole interval (the lowest
    /// ratio of at least `minimumRuns` runs) must stay above a floor.
    public struct Goal: Sendable, Equatable, CustomStringConvertible {
        /// The median per-round ratio must be at least this.
        public var medianAtLeast: Double
        /// Every per-round ratio must be above this.
        public var minimumAbove: Double
        /// Fewer runs than this cannot show the interval.
        public var minimumRuns: Int
        /// The capture must report its counts, have written events and lost none.
        public var requiresNoLoss: Bool

        /// Issue 16's goal for capturing every syscall: median >= 0.95, min > 0.90 over >= 5 runs, 0 lost.
        public static let capture = Goal(medianAtLeast: 0.95, minimumAbove: 0.90, minimumRuns: 5, requiresNoLoss: true)

        /// The goal a configuration is held to; nil for those without one (the baseline, the
        /// comparison monitors, detection and seccomp, which are measured but not judged).
        public static func of(_ configuration: Configuration) -> Goal? {
            configuration == .capture ? .capture : nil
        }

        public var description: String {
            String(
                format: "median ratio >= %.2f and every ratio > %.2f over >= %d runs", medianAtLeast, minimumAbove,
                minimumRuns)
                + (requiresNoLoss ? ", 0 events lost" : "")
        }

        /// The verdict on per-round `ratios` and, for a capture, each run's events written and
        /// lost (nil where a run did not report them).
        public func judge(ratios: [Double], runs: [(written: Int?, lost: Int?)]) -> Verdict {
            var reasons: [String] = []
            let spread = Spread(ratios)
            if ratios.count < minimumRuns {
                reasons.append(
                    "\(ratios.count) run\(ratios.count == 1 ? "" : "s") with a ratio, fewer than \(minimumRuns)")
            }
            if !ratios.isEmpty {
                if spread.median < medianAtLeast {
                    reasons.append(String(format: "median %.3f < %.2f", spread.median, medianAtLeast))
                }
                if spread.min <= minimumAbove {
                    reasons.append(String(format: "min %.3f <= %.2f", spread.min, minimumAbove))
                }
            }
            let written = runs.compactMap(\.written), lost = runs.compactMap(\.lost)
            let eventsLost = lost.reduce(0, +)
            if requiresNoLoss {
                if written.count < runs.count || lost.count < runs.count {
                    reasons.append("a run did not report its events written and lost")
                }
                if eventsLost > 0 { reasons.append("\(eventsLost) events lost") }
                if written.contains(where: { $0 <= 0 }) { reasons.append("a run wrote no events") }
            }
            var figures =
                ratios.isEmpty
                ? "no ratio"
                : String(
                    format: "median %.3f, min %.3f, max %.3f over %d run%@", spread.median, spread.min, spread.max,
                    ratios.count, ratios.count == 1 ? "" : "s")
            if requiresNoLoss && !lost.isEmpty { figures += ", \(eventsLost) lost" }
            return Verdict(met: reasons.isEmpty, figures: figures, reasons: reasons)
        }
    }

    /// Whether a goal is met, and why not.
    public struct Verdict: Sendable, Equatable {
        public var met: Bool
        /// The figures judged, such as "median 0.961, min 0.921, max 1.010 over 5 runs, 0 lost".
        public var figures: String
        /// Every way the goal was missed (empty when met).
        public var reasons: [String]

        /// "met (figures)" or "NOT met: reason; reason (figures)".
        public var text: String {
            met ? "met (\(figures))" : "NOT met: \(reasons.joined(separator: "; ")) (\(figures))"
        }
    }
}
