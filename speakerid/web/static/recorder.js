// speakerid: record from the microphone with the Web Audio API and attach the recording to a form's file input
// as a 16-bit PCM mono WAV, so that the form submits it like an uploaded file. Plain JS, no framework.
// getUserMedia only exists in secure contexts (https://, http://localhost, http://127.0.0.1).
"use strict";

(function () {
  const MAX_SECONDS = 60;
  const workletUrl = (document.getElementById("recorder-script") || {}).dataset?.worklet;

  // RIFF/WAVE, PCM format 1, mono, 16 bits per sample.
  function encodeWav(samples, sampleRate) {
    const buffer = new ArrayBuffer(44 + samples.length * 2);
    const view = new DataView(buffer);
    const text = (offset, s) => { for (let i = 0; i < s.length; i++) view.setUint8(offset + i, s.charCodeAt(i)); };
    text(0, "RIFF");
    view.setUint32(4, 36 + samples.length * 2, true);
    text(8, "WAVE");
    text(12, "fmt ");
    view.setUint32(16, 16, true);            // size of the fmt chunk
    view.setUint16(20, 1, true);             // PCM
    view.setUint16(22, 1, true);             // mono
    view.setUint32(24, sampleRate, true);
    view.setUint32(28, sampleRate * 2, true); // bytes per second
    view.setUint16(32, 2, true);             // bytes per frame
    view.setUint16(34, 16, true);            // bits per sample
    text(36, "data");
    view.setUint32(40, samples.length * 2, true);
    for (let i = 0; i < samples.length; i++) {
      const s = Math.max(-1, Math.min(1, samples[i]));
      view.setInt16(44 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
    return new Blob([buffer], { type: "audio/wav" });
  }

  function concat(chunks) {
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const out = new Float32Array(total);
    let offset = 0;
    for (const c of chunks) { out.set(c, offset); offset += c.length; }
    return out;
  }

  function stamp() {
    const d = new Date();
    const two = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}${two(d.getMonth() + 1)}${two(d.getDate())}-${two(d.getHours())}${two(d.getMinutes())}${two(d.getSeconds())}`;
  }

  class Recorder {
    constructor(root) {
      this.root = root;
      this.input = document.getElementById(root.dataset.target);
      this.append = root.dataset.mode === "append";
      this.start = root.querySelector(".rec-start");
      this.stopButton = root.querySelector(".rec-stop");
      this.status = root.querySelector(".rec-status");
      this.preview = root.querySelector(".rec-preview");
      this.start.addEventListener("click", () => this.begin().catch((e) => this.fail(e)));
      this.stopButton.addEventListener("click", () => this.finish().catch((e) => this.fail(e)));
    }

    say(text) { this.status.textContent = text; }

    fail(error) {
      this.cleanup();
      this.root.classList.remove("recording");
      this.start.disabled = false;
      this.stopButton.disabled = true;
      const name = error && error.name === "NotAllowedError" ? "microphone permission was denied" : String(error && error.message || error);
      this.say(`Recording failed: ${name}. You can upload a file instead.`);
    }

    async begin() {
      this.start.disabled = true;
      this.say("asking for the microphone…");
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
      this.context = new AudioContext();
      this.source = this.context.createMediaStreamSource(this.stream);
      this.chunks = [];
      this.mute = this.context.createGain();
      this.mute.gain.value = 0;  // the graph must reach the destination to run, but nothing should be heard
      this.mute.connect(this.context.destination);
      if (this.context.audioWorklet && workletUrl) {
        await this.context.audioWorklet.addModule(workletUrl);
        this.node = new AudioWorkletNode(this.context, "speakerid-recorder");
        this.node.port.onmessage = (event) => {
          if (event.data === "flushed") { if (this.onFlushed) this.onFlushed(); } else { this.chunks.push(event.data); }
        };
      } else {  // older browsers: the deprecated ScriptProcessorNode
        this.node = this.context.createScriptProcessor(4096, 1, 1);
        this.node.onaudioprocess = (event) => this.chunks.push(new Float32Array(event.inputBuffer.getChannelData(0)));
      }
      this.source.connect(this.node);
      this.node.connect(this.mute);
      this.started = performance.now();
      this.root.classList.add("recording");
      this.stopButton.disabled = false;
      this.timer = setInterval(() => {
        const seconds = (performance.now() - this.started) / 1000;
        this.say(`recording… ${seconds.toFixed(1)} s (stops by itself at ${MAX_SECONDS} s)`);
        if (seconds >= MAX_SECONDS) this.finish().catch((e) => this.fail(e));
      }, 100);
    }

    async finish() {
      if (!this.context) return;
      clearInterval(this.timer);
      this.stopButton.disabled = true;
      if (this.node.port) {  // collect the worklet's last partial block
        await new Promise((resolve) => { this.onFlushed = resolve; this.node.port.postMessage("flush"); });
      }
      const rate = this.context.sampleRate;
      const samples = concat(this.chunks);
      this.cleanup();
      this.root.classList.remove("recording");
      this.start.disabled = false;
      if (samples.length < rate * 0.5) { this.say("The recording is shorter than half a second; try again."); return; }
      const file = new File([encodeWav(samples, rate)], `recording-${stamp()}.wav`, { type: "audio/wav" });
      const list = new DataTransfer();
      if (this.append) for (const f of this.input.files) list.items.add(f);
      list.items.add(file);
      this.input.files = list.files;
      this.input.dispatchEvent(new Event("change", { bubbles: true }));
      if (this.preview.src) URL.revokeObjectURL(this.preview.src);
      this.preview.src = URL.createObjectURL(file);
      this.preview.hidden = false;
      this.say(`recorded ${(samples.length / rate).toFixed(1)} s at ${rate} Hz: ${file.name} is attached to the form`);
    }

    cleanup() {
      clearInterval(this.timer);
      if (this.node) { try { this.node.disconnect(); } catch (e) { /* already disconnected */ } }
      if (this.source) { try { this.source.disconnect(); } catch (e) { /* idem */ } }
      if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
      if (this.context) this.context.close();
      this.node = this.source = this.stream = this.context = null;
    }
  }

  function init() {
    const available = window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia
      && window.AudioContext && window.DataTransfer;
    for (const root of document.querySelectorAll(".recorder")) {
      if (!available) {
        root.classList.add("unavailable");
        root.querySelector(".rec-start").disabled = true;
        root.querySelector(".rec-status").textContent = window.isSecureContext
          ? "Recording is not supported by this browser; upload a file instead."
          : "Recording needs a secure context (https://, or http://localhost / 127.0.0.1 on this machine); upload a file instead.";
        continue;
      }
      new Recorder(root);
    }
    // Scoring takes a moment: show that the form is working and prevent double submissions.
    for (const form of document.querySelectorAll("form")) {
      form.addEventListener("submit", () => {
        const button = form.querySelector("button[type=submit]");
        if (button) { button.dataset.label = button.textContent; button.disabled = true; button.textContent = "Working…"; }
      });
    }
    window.addEventListener("pageshow", () => {  // coming back through the history: the buttons work again
      for (const button of document.querySelectorAll("button[data-label]")) {
        button.disabled = false;
        button.textContent = button.dataset.label;
      }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
