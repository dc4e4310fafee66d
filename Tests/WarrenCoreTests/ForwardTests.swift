import Testing
import WarrenCore

@Suite struct ForwardTests {
    struct Case: Sendable, CustomStringConvertible {
        var spec: String
        var kind: Forward.Kind
        var listen: Forward.Endpoint
        var target: Forward.Endpoint?
        var description: String { "\(kind) \(spec)" }
    }

    static let good: [Case] = [
        Case(spec: "15432:db:5432", kind: .local, listen: .tcp(host: nil, port: 15432), target: .tcp(host: "db", port: 5432)),
        Case(spec: "127.0.0.1:15432:db:5432", kind: .local, listen: .tcp(host: "127.0.0.1", port: 15432), target: .tcp(host: "db", port: 5432)),
        Case(spec: "[::1]:15432:[fd00::5]:5432", kind: .local, listen: .tcp(host: "::1", port: 15432), target: .tcp(host: "fd00::5", port: 5432)),
        Case(spec: "localhost:8080:10.0.0.5:80", kind: .local, listen: .tcp(host: "localhost", port: 8080), target: .tcp(host: "10.0.0.5", port: 80)),
        Case(spec: "*:8080:web:80", kind: .local, listen: .tcp(host: "*", port: 8080), target: .tcp(host: "web", port: 80)),
        Case(spec: "/tmp/pg.sock:db:5432", kind: .local, listen: .unix(path: "/tmp/pg.sock"), target: .tcp(host: "db", port: 5432)),
        Case(spec: "15432:/run/pg.sock", kind: .local, listen: .tcp(host: nil, port: 15432), target: .unix(path: "/run/pg.sock")),
        Case(spec: "127.0.0.1:15432:/run/pg.sock", kind: .local, listen: .tcp(host: "127.0.0.1", port: 15432), target: .unix(path: "/run/pg.sock")),
        Case(spec: "/tmp/a.sock:/run/b.sock", kind: .local, listen: .unix(path: "/tmp/a.sock"), target: .unix(path: "/run/b.sock")),
        Case(spec: "8080:localhost:80", kind: .remote, listen: .tcp(host: nil, port: 8080), target: .tcp(host: "localhost", port: 80)),
        Case(spec: "0.0.0.0:8080:localhost:80", kind: .remote, listen: .tcp(host: "0.0.0.0", port: 8080), target: .tcp(host: "localhost", port: 80)),
        Case(spec: "9090", kind: .remote, listen: .tcp(host: nil, port: 9090), target: nil),
        Case(spec: "127.0.0.1:9090", kind: .remote, listen: .tcp(host: "127.0.0.1", port: 9090), target: nil),
        Case(spec: "8080:/run/app.sock", kind: .remote, listen: .tcp(host: nil, port: 8080), target: .unix(path: "/run/app.sock")),
        Case(spec: "/tmp/r.sock:localhost:80", kind: .remote, listen: .unix(path: "/tmp/r.sock"), target: .tcp(host: "localhost", port: 80)),
        Case(spec: "1080", kind: .dynamic, listen: .tcp(host: nil, port: 1080), target: nil),
        Case(spec: "127.0.0.1:1080", kind: .dynamic, listen: .tcp(host: "127.0.0.1", port: 1080), target: nil),
        Case(spec: "[::1]:1080", kind: .dynamic, listen: .tcp(host: "::1", port: 1080), target: nil),
    ]

    @Test(arguments: good)
    func parses(_ c: Case) throws {
        let forward = try Forward.parse(c.spec, kind: c.kind).get()
        #expect(forward.listen == c.listen)
        #expect(forward.target == c.target)
        // Round trip through the description, which is what the config shows back.
        #expect(try Forward.parse(forward.description, kind: c.kind).get() == forward)
    }

    static let bad: [(String, Forward.Kind)] = [
        ("", .local), ("abc", .local), ("15432", .local), ("15432:db", .local), ("a:b:c:d:e", .local),
        ("0:db:5432", .local), ("15432:db:70000", .local), ("15432:db:port", .local),
        ("15432:-db:5432", .local), ("15432:db name:5432", .local), ("[::1:15432:db:1", .local),
        ("::15432:db:1", .local), ("1080:db:5432", .dynamic), ("/tmp/x.sock", .dynamic),
        ("-L1:a:2", .local), ("1:a:2\n", .local), ("1:%h:2", .local), ("/tmp/a b:db:1", .local),
        ("bind!:1:a:2", .local), ("1:a\"b:2", .local),
    ]

    @Test(arguments: bad.indices)
    func refuses(_ index: Int) {
        let (spec, kind) = Self.bad[index]
        guard case .failure(let error) = Forward.parse(spec, kind: kind) else {
            Issue.record("\(kind) \"\(spec)\" parsed, but should be refused")
            return
        }
        #expect(!error.reason.isEmpty)
    }
}
