using System.Globalization;
using System.Text.RegularExpressions;

namespace ControlPlane.Operator.Store;

/// <summary>
/// Versioned migrations of the system of record, in schema controlplane: the embedded files
/// Store/Migrations/NNNN_name.sql, run in version order. Each file's first line is "-- name: ...", the name
/// recorded in controlplane.schema_migrations; the SQL run is the rest of the file. Append only: never edit
/// a shipped one (a database that applied it never runs it again; MigrationsTests pins each one's SQL).
/// </summary>
public static partial class Migrations
{
    public sealed record Migration(int Version, string Name, string Sql);

    /// <summary>Manifest names of the embedded files (the csproj sets them): this prefix, then the file name.</summary>
    public const string ResourcePrefix = "ControlPlane.Operator.Store.Migrations.";

    const string NameHeader = "-- name: ";

    public static readonly IReadOnlyList<Migration> All = Load();

    [GeneratedRegex(@"^(\d{4})_[a-z0-9_]+\.sql$")]
    private static partial Regex FileName();

    static List<Migration> Load()
    {
        var assembly = typeof(Migrations).Assembly;
        var all = assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal))
            .Select(n =>
            {
                using var stream = assembly.GetManifestResourceStream(n)!;
                using var reader = new StreamReader(stream);
                return Parse(n[ResourcePrefix.Length..], reader.ReadToEnd());
            })
            .OrderBy(m => m.Version)
            .ToList();
        // A version twice would run one and silently skip the other on every database.
        if (all.GroupBy(m => m.Version).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            throw new InvalidOperationException($"migration version {twice.Key} is embedded more than once");
        }

        return all;
    }

    /// <summary>One file: its version from the name, its recorded name from the header, its SQL the rest (line ends as LF, no final newline).</summary>
    public static Migration Parse(string fileName, string text)
    {
        var match = FileName().Match(fileName);
        if (!match.Success) throw new InvalidOperationException($"migration file {fileName}: its name must be NNNN_name.sql (lower case, digits, underscores)");
        // Normalised so a checkout that converts line ends runs the same bytes.
        text = text.Replace("\r\n", "\n", StringComparison.Ordinal);
        var header = text.IndexOf('\n', StringComparison.Ordinal);
        if (header < 0 || !text.StartsWith(NameHeader, StringComparison.Ordinal) || string.IsNullOrWhiteSpace(text[NameHeader.Length..header]))
        {
            throw new InvalidOperationException($"migration file {fileName}: its first line must be \"{NameHeader}<name recorded in controlplane.schema_migrations>\"");
        }

        var sql = text[(header + 1)..];
        if (sql.EndsWith('\n')) sql = sql[..^1];
        return new Migration(int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), text[NameHeader.Length..header], sql);
    }
}
