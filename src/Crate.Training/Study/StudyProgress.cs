using System.Text.Encodings.Web;
using System.Text.Json;
using Crate.Core.IO;
using Crate.Core.Model;

namespace Crate.Training.Study;

/// <summary>
/// A study's progress on disk, so a killed study continues where it stopped: <c>progress.json</c> (the options it runs
/// with, the pretext losses and the finished cells), <c>pretrained-&lt;half&gt;-&lt;pretext&gt;.safetensors</c> (each pretrained trunk) and
/// <c>phase.ckpt</c> (the current pretraining or adaptation, every few steps). Every file is written atomically.
/// </summary>
internal sealed class StudyProgress
{
    private const string ProgressFile = "progress.json";
    private const string PhaseFile = "phase.ckpt";
    private static readonly JsonSerializerOptions Json = new(Checkpoint.Json) { WriteIndented = false, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly string _directory;
    private readonly int _everySteps;
    private State _state;

    private StudyProgress(string directory, int everySteps, State state) => (_directory, _everySteps, _state) = (directory, everySteps, state);

    /// <summary>
    /// Opens the progress in <paramref name="directory"/>: continues it when <paramref name="resume"/> (it must have been
    /// written with the same <paramref name="fingerprint"/>), else starts afresh, deleting an earlier study's files.
    /// </summary>
    /// <exception cref="TrainingException">Resuming, but there is nothing to resume or it was written with other options.</exception>
    public static StudyProgress Open(string directory, string fingerprint, int everySteps, bool resume)
    {
        var path = Path.Combine(directory, ProgressFile);
        Directory.CreateDirectory(directory);
        AtomicFile.DeleteAbandoned(directory);
        if (!resume)
        {
            foreach (var file in Directory.EnumerateFiles(directory).Where(f => Path.GetFileName(f) is ProgressFile or PhaseFile || Path.GetFileName(f).StartsWith("pretrained-", StringComparison.Ordinal)))
                File.Delete(file);
            var fresh = new StudyProgress(directory, everySteps, new State { Options = fingerprint });
            fresh.Write();
            return fresh;
        }
        if (!File.Exists(path)) throw new TrainingException($"There is no study to resume in '{directory}': '{ProgressFile}' is missing.");
        State state;
        try { state = JsonSerializer.Deserialize<State>(File.ReadAllText(path), Json) ?? throw new JsonException("empty"); }
        catch (JsonException e) { throw new TrainingException($"'{path}' cannot be read: {e.Message}", e); }
        if (state.Options != fingerprint)
            throw new TrainingException($"The study in '{directory}' was started with other options ({state.Options}); this run has {fingerprint}. Resume with the same options.");
        return new StudyProgress(directory, everySteps, state);
    }

    /// <summary>The checkpoint of a pretraining or adaptation run named <paramref name="phase"/>.</summary>
    public StepCheckpoint Phase(string phase) => new(Path.Combine(_directory, PhaseFile), phase, _everySteps);

    /// <summary>The trunk of half <paramref name="task"/> pretrained with <paramref name="pretext"/> and its loss, when that pretraining finished.</summary>
    public bool TryGetPretrained(StudyTask task, PretextTask pretext, CrateConfig config, out CrateWeights trunk, out double? loss)
    {
        trunk = null!;
        loss = null;
        if (_state.Pretrained.FirstOrDefault(p => p.Task == task && p.Pretext == pretext) is not { } done) return false;
        trunk = CrateWeights.Load(PretrainedPath(task, pretext), config);
        loss = done.Loss;
        return true;
    }

    /// <summary>Records a finished pretraining (the trunk first: the record says it exists).</summary>
    public void SavePretrained(StudyTask task, PretextTask pretext, CrateWeights trunk, double? loss)
    {
        trunk.Save(PretrainedPath(task, pretext));
        _state = _state with { Pretrained = [.. _state.Pretrained, new Pretraining(task, pretext, loss)] };
        Write();
    }

    /// <summary>The finished cell of half <paramref name="task"/>, <paramref name="pretext"/> and <paramref name="method"/>, if any.</summary>
    public StudyCell? Cell(StudyTask task, PretextTask pretext, Adaptation.AdaptationMethod method) =>
        _state.Cells.FirstOrDefault(c => c.Task == task && c.Pretext == pretext && c.Adaptation == method);

    /// <summary>Records a finished cell.</summary>
    public void SaveCell(StudyCell cell)
    {
        _state = _state with { Cells = [.. _state.Cells, cell] };
        Write();
    }

    private string PretrainedPath(StudyTask task, PretextTask pretext) =>
        Path.Combine(_directory, $"pretrained-{task.ToString().ToLowerInvariant()}-{pretext.ToString().ToLowerInvariant()}.safetensors");

    private void Write() => AtomicFile.WriteAllText(Path.Combine(_directory, ProgressFile), JsonSerializer.Serialize(_state, Json));

    private sealed record State
    {
        public string Options { get; init; } = "";
        public IReadOnlyList<Pretraining> Pretrained { get; init; } = [];
        public IReadOnlyList<StudyCell> Cells { get; init; } = [];
    }

    /// <summary>A finished pretraining: its half, pretext task and final loss (null for the untrained control).</summary>
    private sealed record Pretraining(StudyTask Task, PretextTask Pretext, double? Loss);
}
