using Crate.Core.Model;
using Crate.MLNet.Internal;
using Crate.Onnx.Runtime;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Crate.MLNet;

/// <summary>
/// Scores an <see cref="IDataView"/> in batches: one ONNX Runtime call per <see cref="Options.BatchSize"/> rows instead of one per row
/// (what <c>ApplyOnnxModel</c>, and so the saved chain, does). Output columns match the chain's: <c>Score</c> and <c>PredictedLabel</c>,
/// plus optionally the features.
/// </summary>
/// <remarks>
/// <para>The result is a lazy view: rows are scored while a cursor moves, a batch at a time, so memory stays at one batch whatever the data's
/// size. Input columns pass through unchanged. As in the chain, <c>Score</c> carries the class names as slot names, so
/// <c>mlContext.MulticlassClassification.Evaluate</c> reports them.</para>
/// <para>It is a scorer, not a transformer: it cannot be saved into an ML.NET model. Save the chain from the trainer (or
/// <see cref="CrateImageClassifierEstimator"/>) for portability and use this where throughput matters. The image column must hold pixel
/// vectors (bytes or floats, 0..255, <c>[C, H, W]</c>). The scorer is thread-safe: views and cursors share one ONNX Runtime session.</para>
/// </remarks>
public sealed class CrateBatchScorer : IDisposable
{
    /// <summary>How the scorer reads and writes columns and runs ONNX Runtime.</summary>
    public sealed class Options
    {
        /// <summary>The pixel column. Default <c>Image</c>.</summary>
        public string ImageColumnName = DefaultColumnNames.Image;
        /// <summary>The probabilities column. Default <c>Score</c>.</summary>
        public string ScoreColumnName = DefaultColumnNames.Score;
        /// <summary>The predicted-class column (a key with the class names as values). Default <c>PredictedLabel</c>.</summary>
        public string PredictedLabelColumnName = DefaultColumnNames.PredictedLabel;
        /// <summary>Also output the pooled features under this name. Default null: not computed.</summary>
        public string? FeaturesColumnName;
        /// <summary>Rows per ONNX Runtime call. Default 64.</summary>
        public int BatchSize = 64;
        /// <summary>ONNX Runtime threads and device; default CPU with one thread per core.</summary>
        public CrateOnnxOptions? OnnxOptions;
    }

    private readonly CrateOnnxModel _model;
    private readonly Options _options;

    /// <summary>Loads the exported model at <paramref name="modelFile"/>.</summary>
    /// <exception cref="FileNotFoundException">No file there.</exception>
    /// <exception cref="CrateOnnxException">The file is not a Crate ONNX model.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The batch size is below 1.</exception>
    public CrateBatchScorer(string modelFile, Options? options = null)
    {
        _options = options ?? new Options();
        if (_options.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(options), $"BatchSize must be at least 1, got {_options.BatchSize}.");
        _model = CrateOnnxModel.Load(modelFile, (_options.OnnxOptions ?? new CrateOnnxOptions()) with { MaxBatch = _options.BatchSize });
    }

    /// <summary>The model's configuration (input size, classes), from the file's metadata.</summary>
    public CrateConfig Config => _model.Config;

    /// <summary>A lazily scored view of <paramref name="input"/>: its columns plus Score, PredictedLabel (and features when asked).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The image column is missing, not a pixel vector, or of another size than the model's input.</exception>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var pixels = PixelColumn.Resolve(input.Schema, _options.ImageColumnName);
        if (pixels.Source == PixelSource.Image)
            throw new ArgumentOutOfRangeException(nameof(input),
                $"The image column '{pixels.Name}' holds MLImage images; the batch scorer reads pixel vectors (bytes or floats, 0..255, [C, H, W]). " +
                "Extract them with ExtractPixels in a process without Crate, or read the images with Crate's readers.");
        pixels.CheckShape(_model.Config);
        return new BatchScoredView(this, input, pixels);
    }

    /// <summary>Releases the ONNX Runtime session; views made by this scorer cannot be read afterwards.</summary>
    public void Dispose() => _model.Dispose();

    /// <summary>The lazy view: input columns, then the scorer's.</summary>
    private sealed class BatchScoredView : IDataView
    {
        private readonly CrateBatchScorer _scorer;
        private readonly IDataView _input;
        private readonly PixelColumn _pixels;
        private readonly int _inputCount;

        public BatchScoredView(CrateBatchScorer scorer, IDataView input, PixelColumn pixels)
        {
            _scorer = scorer;
            _input = input;
            _pixels = pixels;
            _inputCount = input.Schema.Count;
            Schema = BuildSchema(input.Schema, scorer._model, scorer._options);
        }

        public bool CanShuffle => false;
        public DataViewSchema Schema { get; }
        public long? GetRowCount() => _input.GetRowCount();

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        {
            var needed = columnsNeeded.Select(c => c.Index).ToHashSet();
            var inputNeeded = needed.Where(i => i < _inputCount).Select(i => _input.Schema[i]);
            // Two cursors over the same rows in the same order: one runs ahead a batch at a time reading pixels, the other
            // serves the input columns of the current row, so no input value of any type has to be buffered.
            var lagging = _input.GetRowCursor(inputNeeded);
            var leading = needed.Any(i => i >= _inputCount) ? _input.GetRowCursor([_input.Schema[_pixels.Name]]) : null;
            return new Cursor(this, lagging, leading, needed);
        }

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
            [GetRowCursor(columnsNeeded, rand)];

        private static DataViewSchema BuildSchema(DataViewSchema input, CrateOnnxModel model, Options o)
        {
            int classes = model.Config.NumClasses;
            var names = new VBuffer<ReadOnlyMemory<char>>(classes, model.ClassNames.Select(n => n.AsMemory()).ToArray());
            var namesType = new VectorDataViewType(TextDataViewType.Instance, classes);
            ValueGetter<VBuffer<ReadOnlyMemory<char>>> getNames = (ref VBuffer<ReadOnlyMemory<char>> value) => names.CopyTo(ref value);
            var slotNames = new DataViewSchema.Annotations.Builder();
            slotNames.Add("SlotNames", namesType, getNames);
            var keyValues = new DataViewSchema.Annotations.Builder();
            keyValues.Add("KeyValues", namesType, getNames);

            var builder = new DataViewSchema.Builder();
            builder.AddColumns(input);
            builder.AddColumn(o.ScoreColumnName, new VectorDataViewType(NumberDataViewType.Single, classes), slotNames.ToAnnotations());
            builder.AddColumn(o.PredictedLabelColumnName, new KeyDataViewType(typeof(uint), classes), keyValues.ToAnnotations());
            if (o.FeaturesColumnName != null) builder.AddColumn(o.FeaturesColumnName, new VectorDataViewType(NumberDataViewType.Single, model.Config.Dim));
            return builder.ToSchema();
        }

        private sealed class Cursor : DataViewRowCursor
        {
            private readonly BatchScoredView _view;
            private readonly DataViewRowCursor _lagging;
            private readonly DataViewRowCursor? _leading;
            private readonly HashSet<int> _active;
            private readonly CrateOnnxModel _model;
            private readonly int _batchSize;
            private readonly int _imageLength;
            private readonly float[] _batch;
            private readonly Action<int> _readPixels;
            private CrateScores? _scores;
            private int _inBatch;
            private int _batchCount;

            public Cursor(BatchScoredView view, DataViewRowCursor lagging, DataViewRowCursor? leading, HashSet<int> active)
            {
                _view = view;
                _lagging = lagging;
                _leading = leading;
                _active = active;
                _model = view._scorer._model;
                _batchSize = view._scorer._options.BatchSize;
                _imageLength = _model.ImageLength;
                _batch = leading != null ? new float[_batchSize * _imageLength] : [];
                _readPixels = leading != null ? PixelReader(leading, view._input.Schema[view._pixels.Name]) : _ => { };
            }

            public override DataViewSchema Schema => _view.Schema;
            public override long Position => _lagging.Position;
            public override long Batch => _lagging.Batch;
            public override ValueGetter<DataViewRowId> GetIdGetter() => _lagging.GetIdGetter();
            public override bool IsColumnActive(DataViewSchema.Column column) =>
                column.Index < _view._inputCount ? _lagging.IsColumnActive(_view._input.Schema[column.Index]) : _active.Contains(column.Index);

            public override bool MoveNext()
            {
                if (!_lagging.MoveNext()) return false;
                if (_leading != null && ++_inBatch >= _batchCount) ScoreNextBatch();
                return true;
            }

            /// <summary>Reads up to a batch of pixels with the leading cursor and scores them in one call.</summary>
            private void ScoreNextBatch()
            {
                int count = 0;
                while (count < _batchSize && _leading!.MoveNext()) _readPixels(count++);
                if (count == 0) throw new InvalidOperationException("The input view yielded fewer rows to the second cursor than to the first; it must enumerate the same rows every time.");
                _scores = _model.Score(_batch.AsMemory(0, count * _imageLength));
                _batchCount = count;
                _inBatch = 0;
            }

            /// <summary>Copies the leading cursor's pixels into batch slot <c>i</c>.</summary>
            private Action<int> PixelReader(DataViewRowCursor leading, DataViewSchema.Column column)
            {
                if (_view._pixels.Source == PixelSource.Bytes)
                {
                    var get = leading.GetGetter<VBuffer<byte>>(column);
                    var bytes = default(VBuffer<byte>);
                    return i =>
                    {
                        get(ref bytes);
                        var target = _batch.AsSpan(i * _imageLength, _imageLength);
                        int k = 0;
                        foreach (var b in bytes.DenseValues()) target[k++] = b;
                    };
                }
                var getFloats = leading.GetGetter<VBuffer<float>>(column);
                var floats = default(VBuffer<float>);
                return i =>
                {
                    getFloats(ref floats);
                    var target = _batch.AsSpan(i * _imageLength, _imageLength);
                    floats.CopyTo(target);
                    // Checked here, where the row is known (the model would name only the image's place in its batch).
                    int bad = FirstNonFinite(target);
                    if (bad >= 0)
                        throw new ArgumentException($"The image column '{column.Name}', row {leading.Position}, value {bad}: pixel {target[bad]} is not finite; pixels must be finite values in [0, 255].");
                };
            }

            private static int FirstNonFinite(ReadOnlySpan<float> values)
            {
                for (int k = 0; k < values.Length; k++) if (!float.IsFinite(values[k])) return k;
                return -1;
            }

            public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
            {
                if (column.Index < _view._inputCount) return _lagging.GetGetter<TValue>(_view._input.Schema[column.Index]);
                if (!_active.Contains(column.Index)) throw new InvalidOperationException($"Column '{column.Name}' was not requested when the cursor was made.");
                // The scorer's columns follow the input's: Score, PredictedLabel, then the features when asked for.
                Delegate getter = (column.Index - _view._inputCount) switch
                {
                    0 => (ValueGetter<VBuffer<float>>)((ref VBuffer<float> value) => Copy(_scores!.ProbabilitiesOf(_inBatch), ref value)),
                    1 => (ValueGetter<uint>)((ref uint value) => value = (uint)Classes.ArgMax(_scores!.ProbabilitiesOf(_inBatch)) + 1),
                    _ => (ValueGetter<VBuffer<float>>)((ref VBuffer<float> value) => Copy(_scores!.FeaturesOf(_inBatch), ref value)),
                };
                return getter as ValueGetter<TValue>
                    ?? throw new InvalidOperationException($"Column '{column.Name}' is {column.Type}; it cannot be read as {typeof(TValue).Name}.");
            }

            private static void Copy(ReadOnlySpan<float> source, ref VBuffer<float> value)
            {
                var editor = VBufferEditor.Create(ref value, source.Length);
                source.CopyTo(editor.Values);
                value = editor.Commit();
            }

            protected override void Dispose(bool disposing)
            {
                if (disposing)
                {
                    _lagging.Dispose();
                    _leading?.Dispose();
                }
                base.Dispose(disposing);
            }
        }
    }
}
