using System.Globalization;

namespace ControlPlane.Operator.Policy;

/// <summary>Sizes for people (status fields kubectl prints): binary units, one decimal, invariant culture.</summary>
public static class ByteSizes
{
    static readonly string[] Units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

    /// <summary>1279 → "1.2 KiB", 12_900_000 → "12.3 MiB", 512 → "512 B".</summary>
    public static string Format(long bytes)
    {
        if (bytes < 1024) return bytes.ToString(CultureInfo.InvariantCulture) + " B";
        double value = bytes;
        var unit = -1;
        // Round before choosing the unit, so 1048575 bytes reads 1.0 MiB, not 1024.0 KiB.
        while (unit < Units.Length - 1 && Math.Round(value, 1) >= 1024)
        {
            value /= 1024;
            unit++;
        }

        return value.ToString("0.0", CultureInfo.InvariantCulture) + " " + Units[unit];
    }
}
