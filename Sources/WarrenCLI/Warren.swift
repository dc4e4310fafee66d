import ArgumentParser

public struct Warren: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "warren",
        abstract: "Keep SSH tunnels up.",
        subcommands: []
    )
    public init() {}
}
