namespace ControlPlane.Operator.Configuration;

/// <summary>
/// The operator cannot start with the configuration it was given. Program prints the message as one
/// line and exits 1: a stack trace says nothing more to the person who has to set the value.
/// </summary>
public sealed class MissingConfigurationException(string message) : Exception(message);
