using System.Security.Cryptography;
using System.Text;
using ControlPlane.Operator.Store;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>
/// The migrations of the system of record (Store/Migrations/*.sql). A database records each applied
/// migration's version and name (controlplane.schema_migrations) and never runs it again, so a shipped
/// migration must never change: its version, its recorded name and the SQL it runs are pinned here.
/// </summary>
public sealed class MigrationsTests
{
    /// <summary>Version, recorded name, and the SHA-256 of the SQL run (as shipped when the SQL still lived in C# strings).</summary>
    static readonly (int Version, string Name, string Sha256)[] Shipped =
    [
        (1, "tenants, workspaces, audit_events", "52d4b9b9f70e4fbb943d1bfefb67b40c3e5d9ae1608f97854452e867f3509c97"),
        (2, "workspace members and databases, provider keys", "316924b589ff7dc76f361976ee7f30ab5c037fcb6f1ed3486ca8dfa8eaf08aac"),
        (3, "workspace databases, allocated once", "3026f12cb3dcf0904f8ce6d90f85fcce2583dc723d97272ed5d879de5d27b885"),
        (4, "exposure publications", "fbded4640221d1d1f05162a6eccca2720f7653eadba3ba885f6e8f02b47d610a"),
        (5, "backups and restores", "33a9964edf84ee7da8939bcef777ce53b88fa3f759ec33b36d2b38f0edaae46f"),
        (6, "deployment events, risk models", "6811bf5d3a47d10a232a4a31e9501ad7502707a31dcec175c999410356f575da"),
        (7, "backups of deleted workspaces", "c70fe85841ebef19b6abe85d32aad371596d835041b26a97a5a1dc1a2491df65"),
    ];

    [Fact]
    public void ShippedMigrations_AreUnchanged_ByteForByte()
    {
        var shipped = Migrations.All.Take(Shipped.Length)
            .Select(m => (m.Version, m.Name, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(m.Sql)))))
            .ToArray();
        Assert.Equal(Shipped, shipped);
    }

    [Fact]
    public void Migrations_AreInVersionOrder_FromOne_WithoutGaps()
    {
        Assert.Equal(Enumerable.Range(1, Migrations.All.Count), Migrations.All.Select(m => m.Version));
        Assert.All(Migrations.All, m => Assert.False(string.IsNullOrWhiteSpace(m.Name)));
        Assert.All(Migrations.All, m => Assert.False(string.IsNullOrWhiteSpace(m.Sql)));
    }

    [Fact]
    public void AFile_IsReadTheSame_WhateverItsLineEnds()
    {
        var lf = Migrations.Parse("0008_example.sql", "-- name: an example\nCREATE TABLE controlplane.x (id int);\nSELECT 1;\n");
        Assert.Equal(new Migrations.Migration(8, "an example", "CREATE TABLE controlplane.x (id int);\nSELECT 1;"), lf);
        Assert.Equal(lf, Migrations.Parse("0008_example.sql", "-- name: an example\r\nCREATE TABLE controlplane.x (id int);\r\nSELECT 1;\r\n"));
    }

    [Theory]
    [InlineData("0008_example.sql", "CREATE TABLE controlplane.x (id int);\n")]
    [InlineData("0008_example.sql", "-- name: \nSELECT 1;\n")]
    [InlineData("8_example.sql", "-- name: an example\nSELECT 1;\n")]
    [InlineData("0008 example.sql", "-- name: an example\nSELECT 1;\n")]
    public void AFile_WithoutItsVersionOrName_IsRefused(string fileName, string text)
    {
        Assert.Throws<InvalidOperationException>(() => Migrations.Parse(fileName, text));
    }
}
