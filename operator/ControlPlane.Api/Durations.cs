using System.Globalization;
using System.Text.RegularExpressions;

namespace ControlPlane.Api;

/// <summary>Durations as users write them: 30s, 10m, 1h30m, 7d, 250ms.</summary>
public static partial class Durations
{
    [GeneratedRegex("^(?:(\\d+)(ms|s|m|h|d))+$")]
    private static partial Regex Whole();

    [GeneratedRegex("(\\d+)(ms|s|m|h|d)")]
    private static partial Regex Part();

    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        if (string.IsNullOrEmpty(text) || !Whole().IsMatch(text)) return false;
        try
        {
            foreach (Match m in Part().Matches(text))
            {
                var n = long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                value += m.Groups[2].Value switch
                {
                    "ms" => TimeSpan.FromMilliseconds(n),
                    "s" => TimeSpan.FromSeconds(n),
                    "m" => TimeSpan.FromMinutes(n),
                    "h" => TimeSpan.FromHours(n),
                    _ => TimeSpan.FromDays(n),
                };
            }

            return value <= TimeSpan.FromDays(3650);
        }
        catch (Exception e) when (e is OverflowException or ArgumentOutOfRangeException)
        {
            return false;
        }
    }
}
