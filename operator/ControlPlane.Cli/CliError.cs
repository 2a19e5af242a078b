namespace ControlPlane.Cli;

/// <summary>
/// Bad input or a refusal the user can act on: printed as one line on stderr ("error: ..."), exit code
/// <see cref="ExitCode"/>, never a stack trace.
/// </summary>
public sealed class CliError(string message, int exitCode = 1) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
