import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP/1.1 request to 127.0.0.1, read until the server closes: enough to
/// scrape warren's /metrics the way Prometheus does, and no more.
public enum HTTPClient {
    public struct Response: Sendable, CustomStringConvertible {
        public var status: Int
        /// Header names lowercased.
        public var headers: [String: String]
        public var body: String

        public var description: String { "HTTP \(status) \(headers)\n\(body)" }
    }

    public static func request(_ method: String = "GET", port: Int, path: String, timeout: Duration = .seconds(5)) throws -> Response {
        let deadline = ContinuousClock.now + timeout
        let fd = try TCPClient.connect(port: port, timeout: timeout)
        defer { Glibc.close(fd) }
        let request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUser-Agent: warren-tests\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
        guard LoopbackSocket.writeAll(fd, Array(request.utf8)[...]) else { throw FixtureError("the server closed before the request was sent") }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            guard LoopbackSocket.wait(fd, for: POLLIN, until: deadline) else { throw FixtureError("no complete response from 127.0.0.1:\(port)\(path) within \(timeout)") }
            let count = read(fd, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            data += buffer[..<count]
        }
        let text = String(decoding: data, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw FixtureError("no header end in: \(text)") }
        let head = text[..<split.lowerBound].components(separatedBy: "\r\n")
        let statusParts = head[0].split(separator: " ")
        guard statusParts.count >= 2, statusParts[0] == "HTTP/1.1", let status = Int(statusParts[1]) else { throw FixtureError("bad status line: \(head[0])") }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { throw FixtureError("bad header: \(line)") }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let body = String(text[split.upperBound...])
        if let length = headers["content-length"].flatMap(Int.init), method != "HEAD", length != body.utf8.count {
            throw FixtureError("Content-Length \(length) but \(body.utf8.count) bytes of body")
        }
        return Response(status: status, headers: headers, body: body)
    }
}
