/// Runs `body` with a started sshd and always stops it, whether `body`
/// returns or throws.
public func withSSHD<T>(
    _ options: SSHDServer.Options = SSHDServer.Options(),
    isolation: isolated (any Actor)? = #isolation,
    _ body: (SSHDServer) async throws -> T
) async throws -> T {
    let sshd = try SSHDServer.start(options)
    defer { sshd.stop() }
    return try await body(sshd)
}

/// Runs `body` with a started target and always stops it.
public func withTCPTarget<T>(
    behavior: TCPTarget.Behavior = .echo,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (TCPTarget) async throws -> T
) async throws -> T {
    let target = try TCPTarget.start(behavior: behavior)
    defer { target.stop() }
    return try await body(target)
}

/// Runs `body` with a new temporary directory and always removes it.
public func withTemporaryDirectory<T>(
    prefix: String = "w-",
    isolation: isolated (any Actor)? = #isolation,
    _ body: (TemporaryDirectory) async throws -> T
) async throws -> T {
    let directory = try TemporaryDirectory(prefix: prefix)
    defer { directory.remove() }
    return try await body(directory)
}
