using System.Globalization;
using System.Text;
using Prometheus;

namespace ControlPlane.Bench;

public sealed record Summary(double Median, double Min, double Max, int Runs)
{
    public static Summary Of(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToList();
        var median = sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
        return new Summary(median, sorted[0], sorted[^1], sorted.Count);
    }

    public override string ToString() => Runs == 1
        ? Fmt(Median)
        : $"{Fmt(Median)} ({Fmt(Min)}–{Fmt(Max)})";

    public static string Fmt(double v) => v switch
    {
        >= 100 => v.ToString("0", CultureInfo.InvariantCulture),
        >= 10 => v.ToString("0.0", CultureInfo.InvariantCulture),
        _ => v.ToString("0.00#", CultureInfo.InvariantCulture),
    };
}

public static class Percentiles
{
    public static double Of(IReadOnlyList<double> samples, double p)
    {
        if (samples.Count == 0) return double.NaN;
        var sorted = samples.Order().ToList();
        var rank = p * (sorted.Count - 1);
        var lo = (int)Math.Floor(rank);
        var hi = (int)Math.Ceiling(rank);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
    }

    /// <summary>Quantile of a Prometheus histogram in exposition text, by linear interpolation inside the bucket.</summary>
    public static double FromHistogram(string exposition, string metric, string labelFilter, double q, IReadOnlyDictionary<double, double>? baseline = null)
    {
        var buckets = Buckets(exposition, metric, labelFilter);
        if (baseline is not null) buckets = buckets.ToDictionary(kv => kv.Key, kv => kv.Value - baseline.GetValueOrDefault(kv.Key));
        var ordered = buckets.OrderBy(kv => kv.Key).ToList();
        if (ordered.Count == 0 || ordered[^1].Value <= 0) return double.NaN;
        var target = q * ordered[^1].Value;
        double prevBound = 0, prevCount = 0;
        foreach (var (bound, count) in ordered)
        {
            if (count >= target)
            {
                if (double.IsPositiveInfinity(bound)) return prevBound;
                var inBucket = count - prevCount;
                return inBucket <= 0 ? bound : prevBound + (bound - prevBound) * (target - prevCount) / inBucket;
            }

            prevBound = bound;
            prevCount = count;
        }

        return prevBound;
    }

    /// <summary>Cumulative bucket counts (le → count) of one histogram, summed over series matching the filter.</summary>
    public static Dictionary<double, double> Buckets(string exposition, string metric, string labelFilter)
    {
        var result = new Dictionary<double, double>();
        foreach (var line in exposition.Split('\n'))
        {
            if (!line.StartsWith(metric + "_bucket{", StringComparison.Ordinal) || !line.Contains(labelFilter, StringComparison.Ordinal)) continue;
            var le = line[(line.IndexOf("le=\"", StringComparison.Ordinal) + 4)..];
            le = le[..le.IndexOf('"')];
            var bound = le == "+Inf" ? double.PositiveInfinity : double.Parse(le, CultureInfo.InvariantCulture);
            var value = double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            result[bound] = result.GetValueOrDefault(bound) + value;
        }

        return result;
    }

    public static async Task<string> ExportAsync(CollectorRegistry registry)
    {
        using var stream = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(stream);
        return Encoding.UTF8.GetString(stream.ToArray());
    }
}

/// <summary>
/// CPU seconds used so far by the processes on this machine, grouped by name (etcd, kube-apiserver,
/// postgres, this harness...), from /proc: shows which process a scenario's time went to.
/// </summary>
public static class ProcessCpu
{
    static readonly double TicksPerSecond = 100; // USER_HZ on Linux

    public static Dictionary<string, double> Snapshot()
    {
        var self = Environment.ProcessId;
        var totals = new Dictionary<string, double>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            string stat;
            try { stat = File.ReadAllText(Path.Combine(dir, "stat")); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            var open = stat.IndexOf('(');
            var close = stat.LastIndexOf(')');
            if (open < 0 || close < open) continue;
            var comm = stat[(open + 1)..close];
            var fields = stat[(close + 2)..].Split(' ');
            // fields[0] is state (field 3); utime and stime are fields 14 and 15.
            var seconds = (double.Parse(fields[11], System.Globalization.CultureInfo.InvariantCulture)
                + double.Parse(fields[12], System.Globalization.CultureInfo.InvariantCulture)) / TicksPerSecond;
            var group = pid == self ? "bench (operator in-process)" : comm switch
            {
                "etcd" => "etcd",
                "kube-apiserver" => "kube-apiserver",
                "kube-controller" => "kube-controller-manager",
                "postgres" => "postgres",
                _ => null,
            };
            if (group is null) continue;
            totals[group] = totals.GetValueOrDefault(group) + seconds;
        }

        return totals;
    }

    public static Dictionary<string, double> Delta(Dictionary<string, double> before, Dictionary<string, double> after) =>
        after.ToDictionary(kv => kv.Key, kv => Math.Round(kv.Value - before.GetValueOrDefault(kv.Key), 2));
}

/// <summary>
/// What the API server did, from its own /metrics: requests and their summed handling time by verb
/// and resource, and watch events sent by kind. A delta of two scrapes shows what one scenario cost it.
/// </summary>
public static class ApiServerWork
{
    public static async Task<Dictionary<string, double>> ScrapeAsync(ControlPlane.Runtime.KubeApi api)
    {
        var text = await api.SendAsync(HttpMethod.Get, "metrics", null, "application/json", CancellationToken.None, accept: "text/plain");
        var result = new Dictionary<string, double>();
        foreach (var line in text.Split('\n'))
        {
            string? key = null;
            if (line.StartsWith("apiserver_request_duration_seconds_sum{", StringComparison.Ordinal)) key = $"{Label(line, "verb")} {Label(line, "resource")}{Sub(line)} seconds";
            else if (line.StartsWith("apiserver_request_duration_seconds_count{", StringComparison.Ordinal)) key = $"{Label(line, "verb")} {Label(line, "resource")}{Sub(line)} requests";
            else if (line.StartsWith("apiserver_watch_events_total{", StringComparison.Ordinal)) key = $"WATCH-EVENTS {Label(line, "kind")} events";
            if (key is null) continue;
            result[key] = result.GetValueOrDefault(key) + double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
        }

        return result;
    }

    static string Sub(string line) => Label(line, "subresource") is { Length: > 0 } s ? "/" + s : "";

    static string Label(string line, string name)
    {
        var at = line.IndexOf("," + name + "=\"", StringComparison.Ordinal);
        if (at < 0) at = line.IndexOf("{" + name + "=\"", StringComparison.Ordinal);
        if (at < 0) return "";
        var start = at + name.Length + 3;
        return line[start..line.IndexOf('"', start)];
    }

    /// <summary>The delta as "verb resource: requests, seconds" rows, costliest first (watch events last).</summary>
    public static List<string> Summary(Dictionary<string, double> before, Dictionary<string, double> after, int top = 14)
    {
        var delta = after.ToDictionary(kv => kv.Key, kv => kv.Value - before.GetValueOrDefault(kv.Key));
        var rows = delta.Where(kv => kv.Key.EndsWith(" seconds", StringComparison.Ordinal) && kv.Value > 0.05)
            .OrderByDescending(kv => kv.Value).Take(top)
            .Select(kv =>
            {
                var name = kv.Key[..^" seconds".Length];
                return $"{name}: {delta.GetValueOrDefault(name + " requests"):0} req, {kv.Value:0.0} s";
            }).ToList();
        rows.AddRange(delta.Where(kv => kv.Key.StartsWith("WATCH-EVENTS", StringComparison.Ordinal) && kv.Value > 0)
            .OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Key[..^" events".Length]}: {kv.Value:0}"));
        return rows;
    }
}
