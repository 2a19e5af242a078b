using System.Security.Cryptography;
using Amazon.Runtime;
using Amazon.S3.Model;
using Amazon.S3;

namespace ControlPlane.Operator.Adapters;

/// <summary>
/// An S3-compatible bucket and where in it: endpoint, bucket, key prefix and credentials. ToString
/// never shows the secret key (records print every member by default).
/// </summary>
public sealed record S3Target(string Endpoint, string Bucket, string Prefix, string AccessKeyId, string SecretAccessKey, string SigningRegion = "us-east-1")
{
    public override string ToString() => $"{Endpoint.TrimEnd('/')}/{Bucket}/{Prefix}";

    /// <summary>Where this target's objects are listed from (and backup keys begin).</summary>
    public string KeyPrefix => Prefix.Trim('/') is { Length: > 0 } p ? p + "/" : "";
}

/// <summary>What a streamed upload stored: its size and SHA-256, computed as the bytes went by.</summary>
public sealed record UploadResult(long SizeBytes, string Sha256);

/// <summary>
/// S3 through AWSSDK.S3 with path-style addressing (what S3-compatible servers expect). Uploads
/// stream with multipart upload, one part in memory at a time (no temp file the size of the
/// database), hashing as they go. Checksums are sent only when an operation requires them: many
/// S3-compatible services refuse the SDK's newer default trailers.
/// </summary>
public sealed class ObjectStore : IDisposable
{
    readonly AmazonS3Client client;

    public ObjectStore(S3Target target)
    {
        Target = target;
        var config = new AmazonS3Config
        {
            ServiceURL = target.Endpoint,
            ForcePathStyle = true,
            AuthenticationRegion = target.SigningRegion,
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            Timeout = TimeSpan.FromMinutes(2),
            MaxErrorRetry = 2,
        };
        client = new AmazonS3Client(new BasicAWSCredentials(target.AccessKeyId, target.SecretAccessKey), config);
    }

    public S3Target Target { get; }

    /// <summary>
    /// Streams <paramref name="source"/> to <paramref name="key"/> with multipart upload. On any failure
    /// (or cancellation) the upload is aborted, so no part is left behind; the exception is rethrown.
    /// </summary>
    /// <param name="started">Told the upload's id before any part is sent, so a process killed mid-upload leaves a record of what to abort.</param>
    public async Task<UploadResult> UploadAsync(string key, Stream source, int partSize, Func<string, Task> started, CancellationToken ct)
    {
        var start = await client.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = Target.Bucket, Key = key }, ct).ConfigureAwait(false);
        try
        {
            await started(start.UploadId).ConfigureAwait(false);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var parts = new List<PartETag>();
            var buffer = new byte[partSize];
            long total = 0;
            while (true)
            {
                var filled = await FillAsync(source, buffer, ct).ConfigureAwait(false);
                // An empty stream still makes one (empty) part: the object exists and its hash is that of nothing.
                if (filled == 0 && parts.Count > 0) break;
                hash.AppendData(buffer, 0, filled);
                total += filled;
                using var part = new MemoryStream(buffer, 0, filled, writable: false);
                var response = await client.UploadPartAsync(new UploadPartRequest
                {
                    BucketName = Target.Bucket, Key = key, UploadId = start.UploadId, PartNumber = parts.Count + 1, InputStream = part, PartSize = filled,
                    // Plain signed bodies: aws-chunked framing is not understood by every S3-compatible server.
                    UseChunkEncoding = false,
                }, ct).ConfigureAwait(false);
                parts.Add(new PartETag(parts.Count + 1, response.ETag));
                if (filled < buffer.Length) break;
            }

            await client.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
            {
                BucketName = Target.Bucket, Key = key, UploadId = start.UploadId, PartETags = parts,
            }, ct).ConfigureAwait(false);
            return new UploadResult(total, Convert.ToHexStringLower(hash.GetHashAndReset()));
        }
        catch
        {
            try
            {
                using var abort = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                await client.AbortMultipartUploadAsync(new AbortMultipartUploadRequest { BucketName = Target.Bucket, Key = key, UploadId = start.UploadId }, abort.Token)
                    .ConfigureAwait(false);
            }
            catch (Exception e) when (e is AmazonServiceException or OperationCanceledException or HttpRequestException)
            {
                // Left for the next start's sweep (AbortUploadsAsync): the original failure is what matters here.
            }

            throw;
        }
    }

    static async Task<int> FillAsync(Stream source, byte[] buffer, CancellationToken ct)
    {
        var filled = 0;
        while (filled < buffer.Length)
        {
            var read = await source.ReadAsync(buffer.AsMemory(filled), ct).ConfigureAwait(false);
            if (read == 0) break;
            filled += read;
        }

        return filled;
    }

    /// <summary>Reads the object back, handing every byte to <paramref name="sink"/>, and returns its size and SHA-256.</summary>
    public async Task<UploadResult> ReadAsync(string key, Stream? sink, CancellationToken ct)
    {
        using var response = await client.GetObjectAsync(new GetObjectRequest { BucketName = Target.Bucket, Key = key }, ct).ConfigureAwait(false);
        await using var body = response.ResponseStream;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[81920];
        long total = 0;
        int read;
        while ((read = await body.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
        {
            hash.AppendData(buffer, 0, read);
            total += read;
            if (sink is not null) await sink.WriteAsync(buffer.AsMemory(0, read), ct).ConfigureAwait(false);
        }

        return new UploadResult(total, Convert.ToHexStringLower(hash.GetHashAndReset()));
    }

    /// <summary>The SHA-256 of what <paramref name="key"/> holds, or null when nothing is there (a write-once check reads before it writes).</summary>
    public async Task<string?> Sha256OrNullAsync(string key, CancellationToken ct)
    {
        try
        {
            return (await ReadAsync(key, null, ct).ConfigureAwait(false)).Sha256;
        }
        catch (AmazonS3Exception e) when (e.ErrorCode == "NoSuchKey" || e.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>
    /// Writes <paramref name="data"/> to <paramref name="key"/> only if nothing is there: a conditional PUT
    /// (If-None-Match: *), which S3 and most compatible services refuse with 412 when the key exists.
    /// Services that ignore the header (s3rver) are covered by the caller's read-before-write check.
    /// Returns false when the service refused because the key exists.
    /// </summary>
    public async Task<bool> PutIfAbsentAsync(string key, byte[] data, CancellationToken ct)
    {
        using var body = new MemoryStream(data, writable: false);
        try
        {
            await client.PutObjectAsync(new PutObjectRequest
            {
                BucketName = Target.Bucket, Key = key, InputStream = body, IfNoneMatch = "*", UseChunkEncoding = false, ContentType = "application/octet-stream",
            }, ct).ConfigureAwait(false);
            return true;
        }
        catch (AmazonS3Exception e) when (e.StatusCode is System.Net.HttpStatusCode.PreconditionFailed or System.Net.HttpStatusCode.Conflict)
        {
            return false;
        }
    }

    /// <summary>Deletes the object (deleting a missing one succeeds, as S3 does).</summary>
    public Task DeleteAsync(string key, CancellationToken ct) =>
        client.DeleteObjectAsync(new DeleteObjectRequest { BucketName = Target.Bucket, Key = key }, ct);

    /// <summary>Aborts an unfinished multipart upload (its parts are dropped); one already gone is not an error.</summary>
    public async Task<bool> AbortAsync(string key, string uploadId, CancellationToken ct)
    {
        try
        {
            await client.AbortMultipartUploadAsync(new AbortMultipartUploadRequest { BucketName = Target.Bucket, Key = key, UploadId = uploadId }, ct).ConfigureAwait(false);
            return true;
        }
        catch (AmazonS3Exception e) when (e.ErrorCode == "NoSuchUpload" || e.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return false;
        }
    }

    /// <summary>Sends one part to an upload (tests use it to show an aborted upload takes no more parts).</summary>
    public async Task UploadPartAsync(string key, string uploadId, int partNumber, byte[] data, CancellationToken ct)
    {
        using var part = new MemoryStream(data, writable: false);
        await client.UploadPartAsync(new UploadPartRequest
        {
            BucketName = Target.Bucket, Key = key, UploadId = uploadId, PartNumber = partNumber, InputStream = part, PartSize = data.Length, UseChunkEncoding = false,
        }, ct).ConfigureAwait(false);
    }

    /// <summary>Starts a multipart upload and returns its id (tests use it to leave one behind, as a killed process would).</summary>
    public async Task<string> InitiateAsync(string key, CancellationToken ct) =>
        (await client.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = Target.Bucket, Key = key }, ct).ConfigureAwait(false)).UploadId;

    /// <summary>Unfinished multipart uploads under a prefix (key, upload id): what a test lists to prove none is left.</summary>
    public async Task<IReadOnlyList<(string Key, string UploadId)>> ListUploadsAsync(string prefix, CancellationToken ct)
    {
        var page = await client.ListMultipartUploadsAsync(new ListMultipartUploadsRequest { BucketName = Target.Bucket, Prefix = prefix }, ct).ConfigureAwait(false);
        return (page.MultipartUploads ?? []).Select(u => (u.Key, u.UploadId)).ToList();
    }

    /// <summary>Every key under a prefix (tests list the bucket with it to prove nothing is left behind).</summary>
    public async Task<IReadOnlyList<string>> ListKeysAsync(string prefix, CancellationToken ct)
    {
        var keys = new List<string>();
        string? token = null;
        do
        {
            var page = await client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = Target.Bucket, Prefix = prefix, ContinuationToken = token }, ct).ConfigureAwait(false);
            keys.AddRange((page.S3Objects ?? []).Select(o => o.Key));
            token = page.IsTruncated == true ? page.NextContinuationToken : null;
        }
        while (token is not null);
        return keys;
    }

    public void Dispose() => client.Dispose();
}
