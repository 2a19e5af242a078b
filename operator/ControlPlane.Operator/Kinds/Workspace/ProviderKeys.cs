using System.Text.RegularExpressions;

namespace ControlPlane.Operator.Kinds;

/// <summary>Format checks of bring-your-own provider keys. Messages name the field, never the value.</summary>
public static partial class ProviderKeys
{
    [GeneratedRegex("^sk-(proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}$")]
    private static partial Regex OpenAi();

    [GeneratedRegex("^sk-ant-[A-Za-z0-9_-]{20,}$")]
    private static partial Regex Anthropic();

    [GeneratedRegex("^[A-Za-z0-9]{32,}$")]
    private static partial Regex Azure();

    /// <summary>Null when valid, else why not (without the key).</summary>
    public static string? Validate(int index, string provider, string? endpoint, string value)
    {
        var field = $"spec.providerKeys[{index}]";
        value = value.Trim();
        return provider switch
        {
            "openai" when value.StartsWith("sk-ant-", StringComparison.Ordinal) => $"{field}: an Anthropic key was given for provider openai",
            "openai" when !OpenAi().IsMatch(value) => $"{field}: not an OpenAI key (expected \"sk-\" followed by at least 20 characters)",
            "anthropic" when !Anthropic().IsMatch(value) => $"{field}: not an Anthropic key (expected \"sk-ant-\" followed by at least 20 characters)",
            "azure-openai" when string.IsNullOrWhiteSpace(endpoint) => $"{field}.endpoint: required for provider azure-openai",
            "azure-openai" when !Uri.TryCreate(endpoint, UriKind.Absolute, out var u) || u.Scheme != "https" =>
                $"{field}.endpoint: must be an https URL",
            "azure-openai" when !Azure().IsMatch(value) => $"{field}: not an Azure OpenAI key (expected at least 32 letters and digits)",
            "openai" or "anthropic" or "azure-openai" => null,
            _ => $"{field}.provider: unknown provider \"{provider}\" (openai, azure-openai, anthropic)",
        };
    }
}
