import WarrenCLI

/// The executable: everything lives in WarrenCLI, so tests can drive the commands.
@main
struct Main {
    static func main() async {
        await Warren.runAsMain()
    }
}
