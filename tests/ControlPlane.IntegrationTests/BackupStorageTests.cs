using System.Security.Cryptography;
using Amazon.S3;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Kinds;
using Npgsql;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>The storage half of backups on a real S3 server (s3rver) and the real pg_dump/pg_restore: streaming, aborting, verifying.</summary>
[Collection(ClusterCollection.Name)]
public sealed class BackupStorageTests(ClusterFixture cluster, S3Fixture s3, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<S3Fixture>
{
    [Fact]
    public async Task Upload_StreamsInParts_ReadsBackTheSameBytes_AndAnAbortedUploadTakesNoMorePart()
    {
        var prefix = "store-" + Guid.NewGuid().ToString("N")[..6];
        using var store = s3.Store(prefix);
        var data = RandomNumberGenerator.GetBytes(12 * 1024 * 1024 + 123);
        string? uploadId = null;
        var key = store.Target.KeyPrefix + "blob";
        var result = await store.UploadAsync(key, new MemoryStream(data), 5 * 1024 * 1024, id =>
        {
            uploadId = id;
            return Task.CompletedTask;
        }, CancellationToken.None);
        Assert.NotNull(uploadId);
        Assert.Equal(data.Length, result.SizeBytes);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(data)), result.Sha256);
        var copy = new MemoryStream();
        var read = await store.ReadAsync(key, copy, CancellationToken.None);
        Assert.Equal(result, read);
        Assert.Equal(data, copy.ToArray());
        Assert.Equal([key], await store.ListKeysAsync(store.Target.KeyPrefix, CancellationToken.None));

        var pending = await store.InitiateAsync(store.Target.KeyPrefix + "partial", CancellationToken.None);
        await store.UploadPartAsync(store.Target.KeyPrefix + "partial", pending, 1, [1, 2, 3], CancellationToken.None);
        Assert.Equal([(store.Target.KeyPrefix + "partial", pending)], await store.ListUploadsAsync(store.Target.KeyPrefix, CancellationToken.None));
        Assert.True(await store.AbortAsync(store.Target.KeyPrefix + "partial", pending, CancellationToken.None));
        Assert.Empty(await store.ListUploadsAsync(store.Target.KeyPrefix, CancellationToken.None));
        await Assert.ThrowsAsync<AmazonS3Exception>(() => store.UploadPartAsync(store.Target.KeyPrefix + "partial", pending, 2, [4], CancellationToken.None));
        await store.DeleteAsync(key, CancellationToken.None);
        Assert.Empty(await store.ListKeysAsync(store.Target.KeyPrefix, CancellationToken.None));
    }

    [Fact]
    public async Task WrongCredentials_AreRefusedByTheServer()
    {
        // s3rver checks the access key id (not a v4 signature): a wrong one is what it refuses.
        using var store = s3.Store("creds", accessKey: "NOT-THE-KEY");
        var e = await Assert.ThrowsAsync<AmazonS3Exception>(() => store.ListKeysAsync("creds/", CancellationToken.None));
        Assert.Equal("InvalidAccessKeyId", e.ErrorCode);
    }

    [Fact]
    public async Task ACorruptedStoredObject_FailsVerification_WhereTheIntactOnePasses()
    {
        var scratch = "verify_" + Guid.NewGuid().ToString("N")[..8];
        await using (var admin = new NpgsqlConnection(cluster.Postgres.ConnectionString()))
        {
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {scratch}", admin);
            await create.ExecuteNonQueryAsync();
        }

        await using (var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(cluster.Postgres.ConnectionString()) { Database = scratch }.ConnectionString))
        {
            await conn.OpenAsync();
            await using var fill = new NpgsqlCommand("CREATE TABLE public.t AS SELECT g AS id, pg_catalog.md5(g::text) AS v FROM pg_catalog.generate_series(1, 20000) g", conn);
            await fill.ExecuteNonQueryAsync();
        }

        var tools = new PgTools(new BackupOptions());
        var b = new NpgsqlConnectionStringBuilder(cluster.Postgres.ConnectionString());
        using var store = s3.Store("verify-" + Guid.NewGuid().ToString("N")[..6]);
        var key = store.Target.KeyPrefix + "db.dump";
        var uploaded = await tools.DumpAsync(new PgLogin(b.Host!, b.Port, scratch, b.Username!, b.Password!),
            stdout => store.UploadAsync(key, stdout, 5 * 1024 * 1024, _ => Task.CompletedTask, CancellationToken.None), CancellationToken.None);
        var intact = await BackupVerifier.VerifyAsync(store, tools, key, uploaded, CancellationToken.None);
        Assert.True(intact.Ok, intact.Message);
        Assert.StartsWith("15.", intact.ServerVersion);

        // Flip bytes of the stored object on the server's disk, as bit rot or a tampering hand would.
        var file = Directory.EnumerateFiles(s3.S3.Directory, "*", SearchOption.AllDirectories)
            .Single(f => f.Contains("db.dump", StringComparison.Ordinal) && f.Contains(store.Target.Prefix, StringComparison.Ordinal) && new FileInfo(f).Length == uploaded.SizeBytes);
        var bytes = await File.ReadAllBytesAsync(file);
        for (var i = 0; i < 64; i++) bytes[i] ^= 0xFF;
        await File.WriteAllBytesAsync(file, bytes);
        var corrupted = await BackupVerifier.VerifyAsync(store, tools, key, uploaded, CancellationToken.None);
        Assert.False(corrupted.Ok);
        Assert.StartsWith("the stored object", corrupted.Message);

        // Corruption past the header: the archive may still list, the hash does not match.
        bytes = await File.ReadAllBytesAsync(file);
        for (var i = 0; i < 64; i++) bytes[i] ^= 0xFF;
        bytes[^10] ^= 0xFF;
        await File.WriteAllBytesAsync(file, bytes);
        var tail = await BackupVerifier.VerifyAsync(store, tools, key, uploaded, CancellationToken.None);
        Assert.False(tail.Ok);
        Assert.StartsWith("the stored object", tail.Message);
        output.WriteLine($"header corrupted: {corrupted.Message}; tail corrupted: {tail.Message}");
    }
}
