import Foundation

/// A strict reader of the Prometheus text exposition format (0.0.4), for tests:
/// it rejects what Prometheus would reject, and a little more that
/// Prometheus tolerates but a well-behaved exporter never writes (a family's
/// lines scattered, a sample before its TYPE, a histogram whose buckets do
/// not add up).
public struct PrometheusExposition: Sendable {
    public struct Sample: Sendable, Equatable {
        public var name: String
        public var labels: [String: String]
        public var value: Double
    }

    public struct Family: Sendable {
        public var name: String
        public var type: String
        public var help: String
        public var samples: [Sample]
    }

    public private(set) var families: [String: Family] = [:]
    /// Family names in the order they appeared.
    public private(set) var order: [String] = []

    /// Every sample of every family.
    public var samples: [Sample] { order.flatMap { families[$0]!.samples } }

    /// The value of the sample `name` whose labels include `labels`; nil if none, fails if several.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let matching = samples.filter { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }
        return matching.count == 1 ? matching[0].value : nil
    }

    /// Parses `text`; throws a `FixtureError` naming the line for anything malformed.
    public static func parse(_ text: String) throws -> PrometheusExposition {
        var result = PrometheusExposition()
        var current: String?
        var seenSeries: Set<String> = []
        guard text.isEmpty || text.hasSuffix("\n") else { throw FixtureError("the exposition does not end with a newline") }
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().enumerated() {
            let where_ = "line \(index + 1): \(line)"
            if line.isEmpty { continue }
            if line.hasPrefix("#") {
                let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
                guard parts.count >= 3, parts[1] == "HELP" || parts[1] == "TYPE" else { continue }  // a plain comment
                let name = String(parts[2])
                guard isMetricName(name) else { throw FixtureError("bad metric name, \(where_)") }
                if result.families[name] == nil {
                    guard !result.order.contains(name) else { throw FixtureError("family \(name) appears twice, \(where_)") }
                    result.families[name] = Family(name: name, type: "untyped", help: "", samples: [])
                    result.order.append(name)
                } else if current != name {
                    throw FixtureError("family \(name) is not contiguous, \(where_)")
                }
                current = name
                let rest = parts.count > 3 ? String(parts[3]) : ""
                if parts[1] == "TYPE" {
                    guard ["counter", "gauge", "histogram", "summary", "untyped"].contains(rest) else { throw FixtureError("bad type, \(where_)") }
                    guard result.families[name]!.samples.isEmpty else { throw FixtureError("TYPE after samples, \(where_)") }
                    result.families[name]!.type = rest
                } else {
                    result.families[name]!.help = rest
                }
                continue
            }
            let sample = try parseSample(Substring(line), where_)
            guard let family = current, belongs(sample.name, to: family, type: result.families[family]!.type) else {
                throw FixtureError("sample outside its family's HELP/TYPE block, \(where_)")
            }
            let series = sample.name + "{" + sample.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + "}"
            guard seenSeries.insert(series).inserted else { throw FixtureError("duplicate series, \(where_)") }
            result.families[family]!.samples.append(sample)
        }
        for family in result.families.values where family.type == "histogram" {
            try checkHistogram(family)
        }
        return result
    }

    static func belongs(_ sample: String, to family: String, type: String) -> Bool {
        switch type {
        case "histogram": return [family + "_bucket", family + "_sum", family + "_count"].contains(sample)
        case "summary": return [family, family + "_sum", family + "_count"].contains(sample)
        default: return sample == family
        }
    }

    static func checkHistogram(_ family: Family) throws {
        let series = Dictionary(grouping: family.samples) { sample in
            sample.labels.filter { $0.key != "le" }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        }
        for (key, samples) in series {
            let buckets = samples.filter { $0.name.hasSuffix("_bucket") }.map { (le: parseValue($0.labels["le"] ?? "") ?? .nan, count: $0.value) }
            guard buckets.allSatisfy({ !$0.le.isNaN }) else { throw FixtureError("\(family.name){\(key)}: a bucket without a numeric le") }
            guard buckets.map(\.le) == buckets.map(\.le).sorted(), buckets.last?.le == .infinity else {
                throw FixtureError("\(family.name){\(key)}: buckets not in order or no +Inf bucket")
            }
            guard zip(buckets, buckets.dropFirst()).allSatisfy({ $0.count <= $1.count }) else {
                throw FixtureError("\(family.name){\(key)}: bucket counts are not cumulative")
            }
            let count = samples.first { $0.name.hasSuffix("_count") }?.value
            guard count == buckets.last?.count, samples.contains(where: { $0.name.hasSuffix("_sum") }) else {
                throw FixtureError("\(family.name){\(key)}: _count differs from the +Inf bucket, or _sum is missing")
            }
        }
    }

    static func parseSample(_ line: Substring, _ where_: String) throws -> Sample {
        var rest = line
        let name = String(rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" })
        guard isMetricName(name) else { throw FixtureError("bad metric name, \(where_)") }
        rest = rest.dropFirst(name.count)
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                let label = String(rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" })
                guard isLabelName(label), rest.dropFirst(label.count).hasPrefix("=\"") else { throw FixtureError("bad label, \(where_)") }
                rest = rest.dropFirst(label.count + 2)
                var value = ""
                while true {
                    guard let ch = rest.first else { throw FixtureError("unterminated label value, \(where_)") }
                    rest = rest.dropFirst()
                    if ch == "\"" { break }
                    if ch == "\\" {
                        guard let escaped = rest.first else { throw FixtureError("bad escape, \(where_)") }
                        rest = rest.dropFirst()
                        switch escaped {
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        case "n": value.append("\n")
                        default: throw FixtureError("bad escape \\\(escaped), \(where_)")
                        }
                    } else {
                        value.append(ch)
                    }
                }
                guard labels.updateValue(value, forKey: label) == nil else { throw FixtureError("label \(label) twice, \(where_)") }
                if rest.first == "," { rest = rest.dropFirst() } else if rest.first != "}" { throw FixtureError("expected , or }, \(where_)") }
            }
            rest = rest.dropFirst()
        }
        guard rest.first == " " else { throw FixtureError("expected a space before the value, \(where_)") }
        let fields = rest.dropFirst().split(separator: " ", omittingEmptySubsequences: false)
        guard (1...2).contains(fields.count), let value = parseValue(String(fields[0])) else { throw FixtureError("bad value, \(where_)") }
        if fields.count == 2 { guard Int64(fields[1]) != nil else { throw FixtureError("bad timestamp, \(where_)") } }
        return Sample(name: name, labels: labels, value: value)
    }

    static func parseValue(_ text: String) -> Double? {
        switch text {
        case "+Inf", "Inf": return .infinity
        case "-Inf": return -.infinity
        case "NaN": return .nan
        default:
            guard !text.isEmpty, text.allSatisfy({ $0.isNumber || "+-.eE".contains($0) }) else { return nil }
            return Double(text)
        }
    }

    static func isMetricName(_ name: String) -> Bool {
        guard let first = name.first, first.isASCII, first.isLetter || first == "_" || first == ":" else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == ":") }
    }

    static func isLabelName(_ name: String) -> Bool {
        guard let first = name.first, first.isASCII, first.isLetter || first == "_" else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }
}
